"""`python -m g60_chassis.dlq replay <topic>`: send dead letters back to the topic they came
from, once their cause is fixed. Reads `<topic>.dlq` as consumer group `g60-dlq-replay`, strips
the dlq_* headers, republishes with the original key and CloudEvents headers (idempotent
producer, acks=all), and commits after each record, so an interrupted replay resumes where it
stopped. Consumers are idempotent, so a record replayed twice is harmless."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from g60_chassis.settings import PlatformSettings

cli = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)


async def replay(bootstrap: str, topic: str, limit: int | None, idle_s: float = 3.0) -> int:
    dlq = topic if topic.endswith(".dlq") else f"{topic}.dlq"
    consumer = AIOKafkaConsumer(
        dlq,
        bootstrap_servers=bootstrap,
        group_id="g60-dlq-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while limit is None or done < limit:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000), max_records=100)
            if not batch:
                break  # caught up
            for records in batch.values():
                for record in records:
                    headers = [(k, v) for k, v in record.headers if not k.startswith("dlq_")]
                    original = dict(record.headers).get("dlq_original_topic")
                    target = original.decode() if original else dlq.removesuffix(".dlq")
                    await producer.send_and_wait(
                        target, record.value, key=record.key, headers=headers
                    )
                    await consumer.commit()
                    done += 1
                    typer.echo(f"replayed {dlq}[{record.partition}]@{record.offset} → {target}")
    finally:
        await producer.stop()
        await consumer.stop()
    return done


@cli.command("replay")
def replay_command(
    topic: Annotated[str, typer.Argument(help="the original topic (or its .dlq)")],
    limit: Annotated[int | None, typer.Option(help="replay at most this many")] = None,
) -> None:
    """Replay the dead letters of TOPIC back onto it."""
    settings = PlatformSettings()
    n = asyncio.run(replay(settings.kafka_bootstrap, topic, limit))
    typer.echo(f"{n} dead letter(s) replayed")


if __name__ == "__main__":
    cli()
