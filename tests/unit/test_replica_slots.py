"""The gateway's concurrency slots (``max_concurrent_requests_per_instance``): order, expiry, cancellation."""

from __future__ import annotations

import asyncio

from emulator.endpoints.replicas import Slots


def test_waiters_get_released_slots_in_arrival_order():
    async def main():
        slots, order = Slots(1), []
        assert await slots.acquire(1)

        async def wait(n):
            assert await slots.acquire(5)
            order.append(n)
            await asyncio.sleep(0)
            slots.release()

        tasks = [asyncio.create_task(wait(n)) for n in range(5)]
        await asyncio.sleep(0.01)
        slots.release()
        await asyncio.gather(*tasks)
        return order, slots.used

    assert asyncio.run(main()) == ([0, 1, 2, 3, 4], 0)


def test_an_expired_wait_is_refused_and_leaves_no_trace():
    async def main():
        slots = Slots(1)
        assert await slots.acquire(1)
        assert not await slots.acquire(0.01)  # the 429 path
        assert slots.release() is False  # nobody waits any more: the slot is free, not handed over
        assert slots.used == 0
        return await slots.acquire(0)  # free again at once, not queued behind the expired waiter

    assert asyncio.run(main())


def test_a_cancelled_waiter_neither_holds_nor_loses_a_slot():
    async def main():
        slots = Slots(1)
        assert await slots.acquire(1)
        waiter = asyncio.create_task(slots.acquire(5))
        await asyncio.sleep(0.01)
        assert slots.release() is True  # handed to the waiter (the gateway then yields to it) ...
        waiter.cancel()  # ... which is cancelled before it runs: the slot must come back
        await asyncio.gather(waiter, return_exceptions=True)
        assert slots.used == 0, slots.used
        assert await slots.acquire(1)
        queued = asyncio.create_task(slots.acquire(5))
        await asyncio.sleep(0.01)
        queued.cancel()  # cancelled while queued
        await asyncio.gather(queued, return_exceptions=True)
        slots.release()
        return slots.used, await slots.acquire(0)

    assert asyncio.run(main()) == (0, True)
