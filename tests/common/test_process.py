"""coop/common/process.py: the serving processes' garbage collector."""
import gc

from coop.common.process import GEN0_THRESHOLD, tune_gc


def test_tune_gc_freezes_what_is_loaded_and_collects_the_young_less_often():
    threshold = gc.get_threshold()
    try:
        gc.unfreeze()
        gc.set_threshold(700, 10, 10)
        tune_gc()
        assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 10_000  # the app's modules, mappers, templates...
        # A larger threshold a process already has is kept.
        gc.set_threshold(GEN0_THRESHOLD * 2, 10, 10)
        tune_gc()
        assert gc.get_threshold()[0] == GEN0_THRESHOLD * 2
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_the_serving_entry_points_tune_the_collector_once_the_app_is_built():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    for name, built in (("wsgi.py", "app = create_app("), ("worker.py", "flask_app = create_app(")):
        text = (root / name).read_text()
        assert text.index("tune_gc()") > text.index(built), name
