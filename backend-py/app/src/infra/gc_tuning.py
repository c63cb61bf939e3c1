"""Garbage-collector settings for a serving process.

With CPython's defaults, a busy server collects garbage very often, and a
full collection walks every object built at startup (FastAPI, SQLAlchemy,
LangChain, pydantic), pausing the event loop while it does. Freezing those
objects takes them out of every later collection, and a larger
first-generation threshold lets a request's short-lived objects die by
reference counting first: a request makes little cyclic garbage, so
collections become rare and short.
"""

import gc

# Net new container objects before a young collection (CPython's default: 700).
GEN0_THRESHOLD = 20_000


def tune_gc_for_serving() -> None:
    """Freeze the objects alive after startup and raise the young threshold.

    Call once, when startup is complete (the app's lifespan does).
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
