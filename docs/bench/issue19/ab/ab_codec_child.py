"""Run by ab_codec.py: one replay and one small-objects measurement in this process (pure or compiled codec)."""
import json, os, sys, tempfile
from pathlib import Path
from freight.config import load_settings
from freight.bench._procs import allow_store_roots, new_topic, drop_topics
from freight.bench.stream import freight_e2e, raw_e2e
from freight.bench.replay import produce_events, freight_replay, raw_replay
from freight.schemas import fastcodec
def main():
    settings = load_settings()
    topic = sys.argv[1]; n = 100_000; out = {"native": fastcodec.NATIVE is not None}
    with tempfile.TemporaryDirectory() as tmp:
        s = allow_store_roots(settings, Path(tmp))
        out["replay"] = n / freight_replay(s, topic, n)
        out["replay_raw"] = n / raw_replay(s, topic, n)
        out["small"] = 20000 / freight_e2e(s, 20000, 128, Path(tmp))
        out["small_raw"] = 20000 / raw_e2e(s, 20000, 128)
    print(json.dumps(out))

if __name__ == '__main__':
    main()
