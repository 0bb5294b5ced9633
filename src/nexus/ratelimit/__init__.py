from nexus.ratelimit.bucket import BoundLimiter, InProcessTokenBucket, TokenBucket
from nexus.ratelimit.config import RateLimitConfig
from nexus.ratelimit.redis_bucket import RedisTokenBucket

__all__ = ["BoundLimiter", "InProcessTokenBucket", "RateLimitConfig", "RedisTokenBucket", "TokenBucket"]
