"""The threat-feed pipeline: pure batch stages, the in-process runner and the RabbitMQ runner."""
