"""A/B, interleaved: Freight end to end (producer process -> Kafka + file store -> StreamConsumer, resolve +
sum) with the file connector's 256 KiB write calls against one write call per payload (the code before)."""
import os, sys, time, shutil, json, statistics, tempfile, numpy as np, multiprocessing as mp
from pathlib import Path
from freight.bench.services import bench_services
from freight.bench._procs import allow_store_roots, new_topic, drop_topics
from freight.config import load_settings
import freight.connectors.file as F

def producer(settings, topic, d, count, size, ready, go):
    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamProducer
    store = Store(f"bench-{topic}", FileConnector(Path(d)))
    obj = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)
    with StreamProducer({None: store}, settings=settings) as p:
        p.send(topic, obj, stream="warmup"); p.flush(); ready.set(); go.wait(300)
        for i in range(count): p.send(topic, obj, stream=f"s{i%4}")
        p.flush()

def run(settings, base, size, count):
    from freight.stream import StreamConsumer
    topic = new_topic(settings, "ab"); d = base / topic
    ctx = mp.get_context("fork"); ready = ctx.Event(); go = ctx.Event()
    try:
        with StreamConsumer(topic, f"g-{topic}", settings=settings, idle_timeout=120) as c:
            c.wait_for_assignment(30)
            pr = ctx.Process(target=producer, args=(settings, topic, str(d), count, size, ready, go)); pr.start()
            ready.wait(); np.asarray(c.next_proxy(120)).sum()
            t0 = time.perf_counter(); go.set(); got = 0
            for proxy in c:
                np.asarray(proxy).sum(); got += 1
                if got == count: break
            el = time.perf_counter() - t0
        pr.join()
    finally:
        shutil.rmtree(d, ignore_errors=True); drop_topics(settings, topic)
    return count * size / 1e6 / el

with bench_services(load_settings()) as settings:
    base = Path(tempfile.mkdtemp(prefix="freight-ab-")); settings = allow_store_roots(settings, base)
    reps = int(sys.argv[1]); sizes = [float(s) for s in sys.argv[2].split(",")]
    modes = {"256 KiB calls (after)": 256 << 10, "one call (before)": 1 << 30}
    out = {}
    for mib in sizes:
        size = int(mib * (1 << 20)); count = max(4, int(512 / mib))
        vals = {m: [] for m in modes}; l0 = os.getloadavg()[0]
        for r in range(reps):
            order = list(modes) if r % 2 == 0 else list(reversed(modes))
            for m in order:
                F.WRITE_CHUNK = modes[m]
                vals[m].append(run(settings, base, size, count))
        load = [round(l0, 2), round(os.getloadavg()[0], 2)]
        for m, v in vals.items():
            print(f"{mib:g} MiB {m}: median {statistics.median(v):.0f} ({min(v):.0f} - {max(v):.0f}) MB/s load {load} {[round(x) for x in v]}", flush=True)
        out[f"{mib:g}"] = {"values": vals, "load_average": load}
    json.dump(out, open(sys.argv[3], "w"), indent=1)
