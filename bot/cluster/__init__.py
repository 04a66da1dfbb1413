"""The cluster: fronts (`python -m bot` with REDIS_URL) and worker machines (`python -m bot.worker`) meeting in
Redis, jobs moved by taskiq (Redis Streams with acknowledgement). Every key is in `keys`, the Lua scripts in
`scripts/`; nothing read from Redis is unpickled. A worker machine that dies leaves its jobs unacknowledged, and
taskiq-redis hands them to another once idle for `connection.REDELIVER_AFTER_MS`; a job whose deadline has passed,
or whose front is gone, is never started."""
