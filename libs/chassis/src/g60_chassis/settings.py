"""Settings shared by every service, from the environment (prefix `G60_`), with strict checks:
outside development a weak bootstrap key is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORTS = {
    "projects": 8001,
    "funding": 8002,
    "matching": 8003,
    "subscriptions": 8004,
    "allinone": 8000,
}


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="G60_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # embedded default: in-process bus + SQLite; `kafka` + `mongo` for the distributed shape
    bus: Literal["memory", "kafka"] = "memory"
    store: Literal["sqlite", "mongo", "memory"] = "sqlite"
    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_db_prefix: str = "g60"
    mongo_max_pool: int = 16  # connections per client (see mongo.py: FerretDB's pool deadlock)
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    port: int | None = None

    topic_projects: str = "g60.projects"
    topic_funding: str = "g60.funding"
    topic_matches: str = "g60.matches"
    consumer_group_prefix: str = "g60"
    # stable per process (e.g. the pod name): Kafka static membership, no rebalance on restart
    instance_id: str | None = None
    max_attempts: int = 3
    # topics this platform creates: 1 and 1 on a single local broker; 3 and 2 on a real cluster
    # (deploy/), so that with acks=all a write survives the loss of one broker
    kafka_replication_factor: int = 1
    kafka_min_insync_replicas: int = 1
    # every publish waits at most this long for the broker's acknowledgement; a producer that
    # confirmed nothing for `kafka_producer_stuck_s` while the broker answers is replaced
    kafka_send_timeout_s: float = 20.0
    kafka_producer_stuck_s: float = 30.0
    # a consumer's fetch waits on the broker until this many bytes are there or this long
    # (aiokafka: 1 byte, 500 ms): under load one fetch per few records instead of one per
    # produce request (`docs/decisions.md`, Kafka consumer groups)
    kafka_fetch_min_bytes: int = Field(16_384, ge=1)
    kafka_fetch_max_wait_ms: int = Field(200, ge=0)
    # the same for a subscription that names the few event types it acts on (it skips the rest)
    kafka_sparse_fetch_min_bytes: int = Field(262_144, ge=1)
    outbox_interval_s: float = 1.0
    # the running relay deletes the batches it published in one call this often (0: one call
    # per publish; `sent_batches.py`)
    outbox_delete_after_s: float = Field(1.0, ge=0)
    # once started, a service freezes its objects out of the garbage collector's reach and
    # collects its youngest generation every this many allocations (0: Python's 700;
    # `collector.py`)
    gc_gen0_threshold: int = Field(10_000, ge=0)
    max_body_bytes: int = 1_000_000
    # an idle HTTP connection is kept this long: longer than clients' and proxies' pools keep
    # one (httpx 5 s, nginx 60 s), so the server never closes a connection a client is about
    # to reuse (uvicorn's 5 s raced httpx's 5 s: a POST now and then failed with ReadError)
    http_keep_alive_s: int = Field(75, ge=1)
    # Accepted as an operator key, e.g. for a first login; never a default outside development.
    bootstrap_operator_key: str | None = None
    # a key's record is reused for this long: a revocation holds at once on the service that
    # made it, within this many seconds on the others (0: read the key store on every request)
    key_cache_s: float = Field(1.0, ge=0)
    match_top_k: int = 10
    # where the matching service's capacity-aware allocation runs: a worker thread (default:
    # nothing to spawn) or one child process (flatter GET latency at 100,000 needs: the
    # allocation's Python no longer holds the service's GIL; see `matching/adapters/allocator.py`)
    match_allocator: Literal["thread", "process"] = "thread"

    # rate limits (token buckets): generous for a partner's integration, raise them for bulk
    # loads; a bucket holds `burst` requests and refills at `per_s` a second
    rate_limit_enabled: bool = True
    rate_limit_store: Literal["auto", "memory", "shared"] = "auto"  # auto: shared with mongo
    # the shared buckets are decided in each process and synchronised with the store at most
    # once this often per key (`synced_buckets.py`: the tolerance across instances); 0: read
    # and rewrite the stored bucket on every request (exact across instances, two store calls)
    rate_limit_sync_s: float = Field(1.0, ge=0)
    rate_key_per_s: float = Field(50.0, gt=0)
    rate_key_burst: int = Field(300, ge=1)
    rate_address_per_s: float = Field(100.0, gt=0)
    rate_address_burst: int = Field(600, ge=1)
    rate_auth_failures_per_min: float = Field(10.0, gt=0)
    rate_auth_failures_burst: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _strict_outside_development(self) -> PlatformSettings:
        key = self.bootstrap_operator_key
        if self.environment == "production" and key is not None and len(key) < 32:
            raise ValueError(
                "G60_BOOTSTRAP_OPERATOR_KEY must be at least 32 characters in production"
            )
        if self.environment == "production" and self.store == "memory":
            raise ValueError("G60_STORE=memory loses data; not allowed in production")
        return self

    def port_for(self, service: str) -> int:
        return self.port or DEFAULT_PORTS[service]

    def sqlite_path(self, service: str) -> Path:
        return self.data_dir / f"{service}.sqlite"

    def mongo_database(self, service: str) -> str:
        return f"{self.mongo_db_prefix}_{service}"

    def group(self, service: str) -> str:
        return f"{self.consumer_group_prefix}-{service}"
