from nexus.ratelimit.bucket import BoundLimiter, InProcessTokenBucket, TokenBucket

__all__ = ["BoundLimiter", "InProcessTokenBucket", "TokenBucket"]
