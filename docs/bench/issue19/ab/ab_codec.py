"""A/B of the event codec: pure (FREIGHT_PURE_PYTHON=1) against compiled (make native), alternating fresh processes."""
import json, os, subprocess, sys, statistics
from pathlib import Path
from freight.bench.services import bench_services
from freight.bench._procs import new_topic, drop_topics
from freight.bench.replay import produce_events
from freight.config import load_settings
reps = int(sys.argv[1]); res = {"pure": [], "native": []}
with bench_services(load_settings()) as settings:
    topic = new_topic(settings, "abreplay"); produce_events(settings, topic, 100_000)
    l0 = os.getloadavg()[0]
    for r in range(reps):
        for mode in (["pure", "native"] if r % 2 == 0 else ["native", "pure"]):
            env = {**os.environ, "FREIGHT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "FREIGHT_SCHEMA_REGISTRY_URL": settings.schema_registry_url, "FREIGHT_PURE_PYTHON": "1" if mode == "pure" else "0"}
            p = subprocess.run([sys.executable, str(Path(__file__).with_name("ab_codec_child.py")), topic], env=env, capture_output=True, text=True)
            line = [l for l in p.stdout.splitlines() if l.startswith("{")]
            if not line: print(p.stderr[-2000:]); sys.exit(1)
            d = json.loads(line[-1]); assert d["native"] == (mode == "native"); res[mode].append(d); print(mode, d, flush=True)
    load = [round(l0, 2), round(os.getloadavg()[0], 2)]
    drop_topics(settings, topic)
for mode, runs in res.items():
    for k in ("replay", "replay_raw", "small", "small_raw"):
        v = [x[k] for x in runs]; print(f"{mode} {k}: median {statistics.median(v):,.0f} ({min(v):,.0f} - {max(v):,.0f})")
    print(mode, "replay ratio per run", [round(x["replay"] / x["replay_raw"], 2) for x in runs], "small ratio", [round(x["small"] / x["small_raw"], 3) for x in runs])
print("load", load)
json.dump({"results": res, "load_average": load}, open(sys.argv[2], "w"), indent=1)
