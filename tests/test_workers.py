"""Our RQ worker classes leave as soon as they are done."""

import time

import django_rq

from kit.workers import SimpleWorker


def test_a_burst_worker_leaves_as_soon_as_its_queues_are_empty():
    """Its command listener could wait a minute for a subscription at exit (PromptExitMixin).
    That was a race, one exit in a few: hence twenty workers."""
    queue = django_rq.get_queue("default")
    for _ in range(20):
        queue.enqueue("builtins.len", [1])
        worker = SimpleWorker([queue], connection=queue.connection)
        started = time.monotonic()
        assert worker.work(burst=True)
        assert time.monotonic() - started < 5
        assert worker.pubsub_thread is not None and not worker.pubsub_thread.is_alive()
