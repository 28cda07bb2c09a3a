from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from tests.reports.helpers import random_batch, store_batch


@pytest.fixture
def filled(app, world, clock):
    """The world with 3,000 random events from 1 October to the clock's now, through the pipeline's write."""
    rng = np.random.default_rng(5)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    seconds = int((clock.now() - start).total_seconds())
    with app.state.engine.begin() as conn:
        store_batch(conn, random_batch(rng, 3000, start, seconds, [world.org_a, world.org_b]))
    return world
