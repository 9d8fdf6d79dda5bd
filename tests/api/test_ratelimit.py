import pytest

from moviola.api.ratelimit import RateLimiter
from moviola.errors import TooManyRequestsError


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_burst_up_to_the_allowance_passes_then_the_rate_holds():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    for _ in range(60):
        limiter.check("key_a")
    with pytest.raises(TooManyRequestsError) as err:
        limiter.check("key_a")
    assert 0 < err.value.retry_after <= 1.0
    clock.now += 1.0  # one request a second refills
    limiter.check("key_a")


def test_keys_have_their_own_buckets():
    limiter = RateLimiter(1, clock=Clock())
    limiter.check("key_a")
    limiter.check("key_b")
    with pytest.raises(TooManyRequestsError):
        limiter.check("key_a")


def test_zero_means_unlimited():
    limiter = RateLimiter(0)
    for _ in range(1000):
        limiter.check(None)
