"""performer-pytorch beside our packages, for `pnpm bench:pytorch`.

Needs PyTorch and performer-pytorch importable (pip install performer-pytorch, or its sources on
PYTHONPATH). Two commands, each printing one JSON object on stdout:

  check DIR     loads DIR/model.safetensors (written by toPerformerPytorch) into
                performer_pytorch.PerformerLM(**DIR/config.json) with a strict load_state_dict,
                runs DIR/tokens.json in eval mode and compares with DIR/logits.json (ours)
  time ...      times performer-pytorch's FastAttention (FAVOR+, bidirectional and causal) at the
                given lengths: --lengths 1024,4096 --heads 8 --dim 64 --features 256 --threads 2
                --runs 3 (median of runs after one warm-up, milliseconds)
"""
import json
import statistics
import sys
import time

import torch


DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "I64": torch.int64}


def load_file(path):
    """A safetensors file as a state_dict (the format: u64 header length, JSON header, data)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        t = torch.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]]) if end > begin else torch.zeros(0, dtype=DTYPES[info["dtype"]])
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors


def check(folder):
    from performer_pytorch import PerformerLM

    with open(f"{folder}/config.json") as f:
        config = json.load(f)
    with open(f"{folder}/tokens.json") as f:
        tokens = torch.tensor(json.load(f))
    with open(f"{folder}/logits.json") as f:
        ours = torch.tensor(json.load(f))
    model = PerformerLM(**config)
    missing = model.load_state_dict(load_file(f"{folder}/model.safetensors"), strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(tokens)
    diff = (logits.reshape(-1) - ours.reshape(-1)).abs()
    print(json.dumps({
        "strict_load": str(missing),
        "shape": list(logits.shape),
        "max_abs_diff": diff.max().item(),
        "max_abs_logit": logits.abs().max().item(),
        "argmax_agreement": (logits.argmax(-1).reshape(-1) == ours.reshape(logits.shape).argmax(-1).reshape(-1)).float().mean().item(),
    }))


def timing(argv):
    from performer_pytorch import FastAttention

    opts = {"lengths": "1024,4096", "heads": "8", "dim": "64", "features": "256", "threads": "2", "runs": "3"}
    for i in range(0, len(argv), 2):
        opts[argv[i].lstrip("-")] = argv[i + 1]
    torch.set_num_threads(int(opts["threads"]))
    H, d, m, runs = int(opts["heads"]), int(opts["dim"]), int(opts["features"]), int(opts["runs"])
    torch.manual_seed(0)
    out = []
    for L in [int(x) for x in opts["lengths"].split(",")]:
        q, k, v = (torch.randn(1, H, L, d) * s for s in (0.5, 0.5, 1.0))
        for causal in (False, True):
            attn = FastAttention(dim_heads=d, nb_features=m, causal=causal).eval()
            times = []
            with torch.no_grad():
                attn(q, k, v)  # warm-up
                for _ in range(runs):
                    t0 = time.perf_counter()
                    attn(q, k, v)
                    times.append((time.perf_counter() - t0) * 1000)
            out.append({"length": L, "causal": causal, "ms": statistics.median(times)})
            print(f"performer-pytorch L={L} causal={causal}: {out[-1]['ms']:.0f} ms", file=sys.stderr)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": "see torch.__config__.show()",
        "results": out,
    }))


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(sys.argv[2])
    elif sys.argv[1] == "time":
        timing(sys.argv[2:])
    else:
        raise SystemExit(__doc__)
