"""Early warning: notification policies, digests, rendering, PGP, channels and delivery."""
