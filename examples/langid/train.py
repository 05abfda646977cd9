#!/usr/bin/python3
"""Train tinyquant's reference transformer: single-word language identification over the
/usr/share/dict word lists, exported to ONNX.

Run with Debian's interpreter (its torch/onnx import only there):
    /usr/bin/python3 examples/langid/train.py [--epochs N] [--threads N]

Data (a C++ loader must reproduce this exactly; every step is literal):
  * Languages, label index in this order, files under /usr/share/dict:
      0 english american-english, 1 french french, 2 german ngerman, 3 italian italian,
      4 spanish spanish, 5 portuguese portuguese, 6 dutch dutch, 7 swedish swedish,
      8 danish danish, 9 polish polish, 10 catalan catalan.
  * Encoding: every file is strict UTF-8 except swedish, which Debian ships (wswedish) in
    ISO-8859-1; its lines are transcoded byte-for-byte to UTF-8 (byte b < 0x80 stays, else it is
    the code point U+00b). From here on "bytes" always means the UTF-8 bytes.
  * Word = one line (split on "\n") with a trailing "\r", if any, removed; empty lines are
    skipped. No case folding, no Unicode normalization. Length = number of code points; only
    words with 1 <= length <= 24 (T) are kept. Duplicates inside one list count once.
  * Ambiguous = the exact same bytes occur in the lists of more than one language; ambiguous
    words are dropped from every language.
  * h(word) = 32-bit FNV-1a over the word's UTF-8 bytes (h = 2166136261; for each byte:
    h = ((h ^ byte) * 16777619) mod 2^32). Split = h % 10: 0 -> test, 1 -> val, 2..9 -> train.
  * Per language and split the candidates are sorted ascending by (h, then the bytes compared
    as unsigned bytes lexicographically, a proper prefix first) and the first CAP are kept:
    test 1000, val 500, train 16000 (a language with fewer keeps all; this is printed).
    Dataset order within a split = language 0's words in that order, then language 1's, ...
  * Vocabulary: id 0 = pad, 1 = unknown, ids 2.. = every code point occurring >= 20 times
    (occurrences, not words) in the kept TRAIN words of all languages, ascending by code point.
  * Encoding of a word: its code points mapped to ids (not in vocab -> 1), then padded with 0
    to 24 ids; int64 [N, 24].

Model: 2-block pre-LN transformer encoder, d=64, 4 heads of 16, MLP 256 with exact (erf) GELU,
learned positions, attention key mask and masked mean pooling both derived from a [V,1]
pad-bias table (-30 for id 0, 0 otherwise) gathered with the tokens, linear head to 11 classes.
No dropout. For export the 1/sqrt(16) query scale is folded into Wq so that no scaling Mul
appears in the graph.

Outputs in examples/langid/models/:
    langid.onnx   opset 17 (LayerNormalization), input "tokens" int64 [N,24], output
                  "logits" [N,11], dynamic batch "N"
    langid.vocab  UTF-8, one character per line, line i (0-based) = token id i + 2
    langid.json   {"model", "test_top1" (percent, all 11 000 test words, PyTorch), "val_top1",
                   "samples", "per_language_test_top1", "languages", "dict_files",
                   "dict_encodings", "caps", "max_len", "vocab_size", "params", "epochs", "seed",
                   "torch", "logits_first100" (100x11, PyTorch), "tokens_first100" (100x24)}
Everything is seeded; the run is deterministic for a given torch build and thread count.
"""
import argparse, copy, json, math, os, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DICT_DIR = "/usr/share/dict"
LANGS = [("english", "american-english"), ("french", "french"), ("german", "ngerman"),
         ("italian", "italian"), ("spanish", "spanish"), ("portuguese", "portuguese"),
         ("dutch", "dutch"), ("swedish", "swedish"), ("danish", "danish"), ("polish", "polish"),
         ("catalan", "catalan")]
ENCODINGS = {"swedish": "iso-8859-1"}  # everything else: utf-8
T = 24
CAPS = {"test": 1000, "val": 500, "train": 16000}
SPLIT_CODE = {"test": 0, "val": 1}     # h % 10; 2..9 -> train
MIN_COUNT = 20
PAD, UNK = 0, 1
FNV_OFFSET, FNV_PRIME = 2166136261, 16777619
HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- data
def read_words(path, encoding):
    """Set of the list's words (UTF-8 bytes) with 1 <= code points <= T."""
    with open(path, "rb") as f:
        data = f.read()
    words = set()
    for line in data.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        s = line.decode(encoding)                  # strict: raises on invalid input
        if 1 <= len(s) <= T:
            words.add(s.encode("utf-8"))
    return words


def fnv1a(b):
    h = FNV_OFFSET
    for c in b:
        h = ((h ^ c) * FNV_PRIME) & 0xFFFFFFFF
    return h


def fnv1a_many(words):
    """Vectorized FNV-1a over a list of byte strings -> uint64 array of 32-bit hashes."""
    n = len(words)
    lens = np.fromiter((len(w) for w in words), dtype=np.int64, count=n)
    flat = np.frombuffer(b"".join(words), dtype=np.uint8)
    starts = np.cumsum(lens) - lens
    mat = np.zeros((n, int(lens.max())), dtype=np.uint64)
    rows = np.repeat(np.arange(n), lens)
    cols = np.arange(flat.size) - np.repeat(starts, lens)
    mat[rows, cols] = flat
    h = np.full(n, FNV_OFFSET, dtype=np.uint64)
    for j in range(mat.shape[1]):
        m = lens > j
        h[m] = ((h[m] ^ mat[m, j]) * np.uint64(FNV_PRIME)) & np.uint64(0xFFFFFFFF)
    return h


def build_dataset(dict_dir):
    sets = []
    for name, fname in LANGS:
        sets.append(read_words(os.path.join(dict_dir, fname), ENCODINGS.get(name, "utf-8")))
    seen, amb = set(), set()
    for s in sets:
        amb |= s & seen
        seen |= s
    del seen
    print(f"{len(amb)} ambiguous words dropped", flush=True)
    splits = {k: ([], []) for k in CAPS}          # split -> (words, labels)
    for li, ((name, _), s) in enumerate(zip(LANGS, sets)):
        words = sorted(s - amb)                   # sorted only to make hashing order-independent
        h = fnv1a_many(words)
        for i in range(0, len(words), max(1, len(words) // 7)):   # spot-check the vectorized hash
            assert int(h[i]) == fnv1a(words[i])
        sp = h % np.uint64(10)
        counts = []
        for key in ("test", "val", "train"):
            idx = np.nonzero(sp >= 2 if key == "train" else sp == SPLIT_CODE[key])[0]
            cap, n_cand = CAPS[key], idx.size
            if idx.size > cap:                    # keep everything tied with the cap-th hash
                hk = h[idx]
                kth = np.partition(hk, cap - 1)[cap - 1]
                idx = idx[hk <= kth]
            cand = sorted((int(h[i]), words[i]) for i in idx)[:cap]
            if len(cand) < cap:
                print(f"  {name}: only {len(cand)} {key} words (cap {cap})", flush=True)
            splits[key][0].extend(w for _, w in cand)
            splits[key][1].extend([li] * len(cand))
            counts.append(f"{key} {len(cand)}/{n_cand}")
        print(f"  {li:2d} {name:<10} {len(s):>8} words, {len(s) - len(words):>7} ambiguous; "
              + ", ".join(counts), flush=True)
    return splits


def build_vocab(train_words):
    counts = {}
    for w in train_words:
        for c in w.decode("utf-8"):
            counts[c] = counts.get(c, 0) + 1
    chars = sorted((c for c, n in counts.items() if n >= MIN_COUNT), key=ord)
    assert "\n" not in chars and "\r" not in chars
    return chars


def encode(words, char_to_id):
    out = torch.zeros(len(words), T, dtype=torch.int64)
    for i, w in enumerate(words):
        ids = [char_to_id.get(c, UNK) for c in w.decode("utf-8")]
        out[i, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out


# ---------------------------------------------------------------- model
class Block(nn.Module):
    def __init__(self, d, heads, hidden):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.ln1 = nn.LayerNorm(d)
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(d, d) for _ in range(4))
        self.ln2 = nn.LayerNorm(d)
        self.w1 = nn.Linear(d, hidden)
        self.act = nn.GELU()
        self.w2 = nn.Linear(hidden, d)
        self.scale = 1.0 / math.sqrt(self.dh)     # None in the export copy (folded into wq)

    def forward(self, x, bias4):
        h = self.ln1(x)
        q = self.wq(h).reshape(-1, T, self.h, self.dh).transpose(1, 2)      # [N,H,T,D]
        k = self.wk(h).reshape(-1, T, self.h, self.dh).permute(0, 2, 3, 1)  # [N,H,D,T]
        v = self.wv(h).reshape(-1, T, self.h, self.dh).transpose(1, 2)      # [N,H,T,D]
        if self.scale is not None:
            q = q * self.scale
        s = torch.matmul(q, k) + bias4                                      # [N,H,T,T]
        p = torch.softmax(s, dim=-1)
        o = torch.matmul(p, v).transpose(1, 2).reshape(-1, T, self.h * self.dh)
        x = x + self.wo(o)
        return x + self.w2(self.act(self.w1(self.ln2(x))))


class LangID(nn.Module):
    def __init__(self, vocab, classes=len(LANGS), d=64, heads=4, hidden=256, blocks=2):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(T, d) * 0.02)
        pad_bias = torch.zeros(vocab, 1)
        pad_bias[PAD, 0] = -30.0
        self.register_buffer("pad_bias", pad_bias)
        self.blocks = nn.ModuleList(Block(d, heads, hidden) for _ in range(blocks))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)
        self.d = d

    def forward(self, tokens):
        x = self.tok_emb(tokens) + self.pos
        pad = F.embedding(tokens, self.pad_bias)          # [N,T,1]: -30 on pads, 0 elsewhere
        bias4 = pad.reshape(-1, 1, 1, T)
        for blk in self.blocks:
            x = blk(x, bias4)
        x = self.ln_f(x)
        w = torch.softmax(pad.reshape(-1, 1, T), dim=-1)  # masked mean-pool weights
        pooled = torch.matmul(w, x).reshape(-1, self.d)
        return self.head(pooled)


def export_copy(model):
    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for blk in m.blocks:
            blk.wq.weight.mul_(blk.scale)
            blk.wq.bias.mul_(blk.scale)
            blk.scale = None
    return m


# ---------------------------------------------------------------- training
def evaluate(model, x, y, bs=1000):
    model.eval()
    preds, logits = [], None
    with torch.no_grad():
        for i in range(0, x.shape[0], bs):
            out = model(x[i:i + bs])
            preds.append(out.argmax(1))
            if i == 0:
                logits = out[:100].double().tolist()
    pred = torch.cat(preds)
    correct = pred == y
    per_lang = [100.0 * correct[y == c].double().mean().item() for c in range(len(LANGS))]
    return 100.0 * correct.double().mean().item(), per_lang, logits


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dict-dir", default=DICT_DIR)
    ap.add_argument("--out", default=os.path.join(HERE, "models"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    t_data = time.time()
    splits = build_dataset(args.dict_dir)
    chars = build_vocab(splits["train"][0])
    char_to_id = {c: i + 2 for i, c in enumerate(chars)}
    vocab = len(chars) + 2
    data = {k: (encode(w, char_to_id), torch.tensor(l, dtype=torch.int64)) for k, (w, l) in splits.items()}
    print(f"vocab {vocab} (pad, unk + {len(chars)} chars); train {len(data['train'][1])}, "
          f"val {len(data['val'][1])}, test {len(data['test'][1])} words ({time.time() - t_data:.0f}s)",
          flush=True)
    xtr, ytr = data["train"]
    xva, yva = data["val"]
    xte, yte = data["test"]

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = LangID(vocab)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    bs = 256
    steps = args.epochs * ((xtr.shape[0] + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    t0 = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        total, seen = 0.0, 0
        for i in range(0, xtr.shape[0], bs):
            idx = perm[i:i + bs]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx], label_smoothing=0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * idx.numel(); seen += idx.numel()
        acc, _, _ = evaluate(model, xva, yva)
        print(f"[langid] epoch {ep + 1}/{args.epochs} loss {total / seen:.4f} val top-1 {acc:.2f}% "
              f"({time.time() - t0:.0f}s)", flush=True)
    train_seconds = time.time() - t0
    val_acc = acc  # the last epoch's: the final model (evaluate() leaves it in eval mode)
    test_acc, per_lang, logits = evaluate(model, xte, yte)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "langid.vocab"), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(c + "\n" for c in chars))
    em = export_copy(model)
    with torch.no_grad():
        ref = model(xte[:1000])
        got = em(xte[:1000])
    diff = (ref - got).abs().max().item()
    print(f"export copy (scale folded into Wq) max |diff| vs trained model: {diff:.3g}", flush=True)
    assert diff < 1e-4
    onnx_path = os.path.join(args.out, "langid.onnx")
    torch.onnx.export(em, xte[:2], onnx_path, opset_version=17, input_names=["tokens"],
                      output_names=["logits"], dynamic_axes={"tokens": {0: "N"}, "logits": {0: "N"}},
                      do_constant_folding=True)
    rec = {"model": "langid", "test_top1": test_acc, "val_top1": val_acc, "samples": int(xte.shape[0]),
           "per_language_test_top1": per_lang, "languages": [n for n, _ in LANGS],
           "dict_files": [os.path.join(args.dict_dir, f) for _, f in LANGS],
           "dict_encodings": [ENCODINGS.get(n, "utf-8") for n, _ in LANGS], "caps": CAPS,
           "max_len": T, "vocab_size": vocab, "params": params, "epochs": args.epochs, "seed": args.seed,
           "torch": torch.__version__, "logits_first100": logits, "tokens_first100": xte[:100].tolist()}
    with open(os.path.join(args.out, "langid.json"), "w") as f:
        json.dump(rec, f)
    print("per-language test top-1: " + ", ".join(f"{n} {a:.1f}" for (n, _), a in zip(LANGS, per_lang)))
    print(f"[langid] PyTorch val top-1 {val_acc:.2f}%, test top-1 {test_acc:.2f}% "
          f"(training {train_seconds:.0f}s) -> {onnx_path}", flush=True)


if __name__ == "__main__":
    main()
