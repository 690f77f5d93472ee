#!/usr/bin/env python3
"""make_corpus.py — writes the seed corpora of tests/fuzz/corpus/<target>/.

The seeds are committed; this script is how they were made, so that they can
be regenerated or extended (run it from anywhere: it finds the source tree
from its own path; it only needs Python's standard library).  Each seed is
derived from a fixture or hostile case the CPU tests already use:

  safetensors    valid files (every dtype, scalar, empty tensor, metadata)
                 and the malformed cases of tests/weights/test_safetensors.c,
                 rebuilt here byte by byte; a file with the real tensor names
                 and dtypes of the bundled tiny-armorm header (shapes shrunk);
                 "#index\\n..." containers for the sharded mode
  config         the bundled models' config.json and the broken variants of
                 tests/weights/test_model_load.c, plus a transformers-5 one
  records        examples/conversations.jsonl lines, the record cases of
                 tests/text/test_records.c, a few golden conversations as
                 records, and multi-line files
  tokenizer      a spread of texts of tests/data/tokenizer/corpus.jsonl.xz
                 (each family, cut to 512 bytes) and invalid UTF-8
  chat_template  golden conversations of tests/data/tokenizer/chat.jsonl.xz
                 in the harness's byte layout (fuzz_chat_template.c) under
                 several flag bytes, and template texts (template mode)

File names are the SHA-1 of the contents (as libFuzzer names its own), so
a rerun rewrites the same files; stale seeds are removed first.
"""
import hashlib
import io
import json
import lzma
import os
import struct
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def save(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def clear():
    for t in ("safetensors", "config", "records", "tokenizer", "chat_template"):
        d = os.path.join(OUT, t)
        if os.path.isdir(d):
            for n in os.listdir(d):
                os.unlink(os.path.join(d, n))


def fixture_member(archive, suffix):
    with tarfile.open(os.path.join(ROOT, archive), "r:xz") as tf:
        for m in tf.getmembers():
            if m.name.endswith(suffix):
                return tf.extractfile(m).read()
    raise SystemExit(f"{archive}: no member ending in {suffix}")


def xz_lines(rel):
    with lzma.open(os.path.join(ROOT, rel), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- safetensors -----------------------------------------------------------

def st_file(header, data=b"", pad=True, length=None):
    h = header.encode() if isinstance(header, str) else header
    if pad:
        h += b" " * (-len(h) % 8)
    n = len(h) if length is None else length
    return struct.pack("<Q", n) + h + data


def one_tensor(entry, nbytes):
    return st_file('{"layer.w": %s}' % entry, b"\0" * nbytes)


def safetensors_seeds():
    data = bytes(range(68))
    valid = ('{"d.i64": {"dtype": "I64", "shape": [3], "data_offsets": [40, 64]},'
             ' "__metadata__": {"format": "pt", "note": "x"},'
             ' "a.bf16": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},'
             ' "c.f32": {"dtype": "F32", "shape": [2, 2], "data_offsets": [24, 40]},'
             ' "b.f16": {"dtype": "F16", "shape": [4], "data_offsets": [12, 20]},'
             ' "f.empty": {"dtype": "F32", "shape": [0, 4], "data_offsets": [68, 68]},'
             ' "e.scalar": {"dtype": "F32", "shape": [], "data_offsets": [64, 68]}}')
    save("safetensors", st_file(valid, data))
    save("safetensors", st_file(valid, data, pad=False))
    save("safetensors", st_file("{}"))
    save("safetensors", st_file('{"__metadata__": [1, 2]}'))
    # every dtype once
    dts = [("BOOL", 1), ("U8", 1), ("I8", 1), ("F8_E4M3", 1), ("F8_E5M2", 1), ("I16", 2),
           ("U16", 2), ("F16", 2), ("BF16", 2), ("I32", 4), ("U32", 4), ("F32", 4),
           ("F64", 8), ("I64", 8), ("U64", 8)]
    ents, off = [], 0
    for i, (name, size) in enumerate(dts):
        ents.append('"t%02d": {"dtype": "%s", "shape": [2], "data_offsets": [%d, %d]}'
                    % (i, name, off, off + 2 * size))
        off += 2 * size
    save("safetensors", st_file("{" + ", ".join(ents) + "}", b"\x55" * off))
    # malformed: test_safetensors.c's cases
    save("safetensors", b"\x10\x00\x00\x00\x00")
    save("safetensors", b"")
    save("safetensors", st_file('{"a": 1}', b"\0" * 4, length=100))
    save("safetensors", st_file("{}      ", length=1 << 62))
    save("safetensors", st_file("", b"\0" * 4, length=0))
    save("safetensors", st_file('{"a": {"dtype": '))
    save("safetensors", st_file("[1, 2, 3]"))
    save("safetensors", st_file('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
                                ' "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}',
                                b"\0" * 8))
    save("safetensors", st_file(b'{"w\xff": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
                                b"\0" * 4))
    for entry, n in [
        ("[1, 2]", 0),
        ('{"shape": [1], "data_offsets": [0, 4]}', 4),
        ('{"dtype": 7, "shape": [1], "data_offsets": [0, 4]}', 4),
        ('{"dtype": "F7", "shape": [1], "data_offsets": [0, 4]}', 4),
        ('{"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 4]}', 4),
        ('{"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}', 8),
        ('{"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}', 8),
        ('{"dtype": "F32", "shape": [1,1,1,1,1,1,1,1,1], "data_offsets": [0, 4]}', 4),
        ('{"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 4]}', 4),
        ('{"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 8]}', 8),
        ('{"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}', 12),
        ('{"dtype": "U8", "shape": [4], "data_offsets": [9223372036854775800, '
         '9223372036854775804]}', 4),
        ('{"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}', 8),
        ('{"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}', 8),
        ('{"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}', 8),
        ('{"dtype": "F32", "shape": [1]}', 4),
        ('{"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 24]}', 24),
        ('{"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551615]}', 4),
    ]:
        save("safetensors", one_tensor(entry, n))
    save("safetensors", st_file('{"first.w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},'
                                ' "zero.w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]},'
                                ' "second.w": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}}',
                                b"\0" * 24))
    save("safetensors", st_file('{"big": {"dtype": "U8", "shape": [20], "data_offsets": [0, 20]},'
                                ' "mid": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]},'
                                ' "late": {"dtype": "U8", "shape": [2], "data_offsets": [10, 12]}}',
                                b"\0" * 20))
    # the real tensor names and dtypes of the bundled tiny ArmoRM, shapes shrunk to [2]
    raw = fixture_member("tests/fixtures/tiny-armorm.tar.xz", "model.safetensors")
    (hlen,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + hlen])
    names = sorted(k for k in hdr if k != "__metadata__")
    sizes = {"BF16": 2, "F16": 2, "F32": 4}
    for subset in (names[:6], names[-6:]):
        out, off = {"__metadata__": hdr.get("__metadata__", {"format": "pt"})}, 0
        for k in subset:
            n = 2 * sizes.get(hdr[k]["dtype"], 4)
            out[k] = {"dtype": hdr[k]["dtype"], "shape": [2], "data_offsets": [off, off + n]}
            off += n
        save("safetensors", st_file(json.dumps(out), b"\x3f" * off))
    # sharded containers (fuzz_safetensors.c's "#index" mode)
    def shard(*tensors):
        ents, off = [], 0
        for name in tensors:
            ents.append('"%s": {"dtype": "F32", "shape": [1], "data_offsets": [%d, %d]}'
                        % (name, off, off + 4))
            off += 4
        return st_file("{" + ", ".join(ents) + "}", b"\0" * off)

    def container(index, shards):
        b = b"#index\n" + json.dumps(index).encode()
        for name, body in shards:
            b += b"\n#shard " + name.encode() + b"\n" + body
        return b

    s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    wm = {"a.w": s1, "b.w": s1, "c.w": s2}
    save("safetensors", container({"metadata": {}, "weight_map": wm},
                                  [(s1, shard("a.w", "b.w")), (s2, shard("c.w"))]))
    save("safetensors", container({"weight_map": wm}, [(s1, shard("a.w", "b.w"))]))  # missing shard
    save("safetensors", container({"weight_map": {"a.w": "../x.safetensors"}}, []))
    save("safetensors", container({"weight_map": {"a.w": s1, "b.w": s2}},
                                  [(s1, shard("a.w", "b.w")), (s2, shard("b.w"))]))  # in two shards
    save("safetensors", container({"weight_map": {"a.w": s2}},
                                  [(s1, shard("a.w")), (s2, shard("z.w"))]))  # wrong shard
    save("safetensors", container({"weight_map": {}}, []))
    save("safetensors", container({"weight_map": {"a.w": 3}}, []))
    save("safetensors", container([1], []))


# ---- config.json -------------------------------------------------------------

def config_seeds():
    base = {}
    for a in ("tiny-armorm", "tiny-rm-llama3"):
        raw = fixture_member(f"tests/fixtures/{a}.tar.xz", "config.json")
        save("config", raw)
        base[a] = json.loads(raw)
    arm = base["tiny-armorm"]
    for key, value in [
        ("architectures", ["LlamaForCausalLM"]), ("num_key_value_heads", 3),
        ("rope_scaling", {"rope_type": "yarn", "factor": 4}),
        ("rope_scaling", {"rope_type": "llama3", "factor": 8.0}),
        ("rope_scaling", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0,
                          "high_freq_factor": 1.0, "original_max_position_embeddings": 8192}),
        ("hidden_act", "gelu"), ("attention_bias", True), ("hidden_size", "64"),
        ("hidden_size", None), ("head_dim", 7), ("head_dim", 48), ("model_type", "mistral"),
        ("eos_token_id", [128001, 128008, 128009, 1, 2, 3, 4, 5, 6, 7]),
        ("eos_token_id", "x"), ("bos_token_id", 1 << 40), ("pad_token_id", None),
        ("num_objectives", 65), ("gating_n_hidden", 8), ("gating_temperature", 0),
        ("rms_norm_eps", 2.0), ("vocab_size", 0), ("torch_dtype", "x" * 40),
    ]:
        c = dict(arm)
        if value is None:
            c.pop(key, None)
        else:
            c[key] = value
        save("config", json.dumps(c, indent=2))
    seq = dict(base["tiny-rm-llama3"])
    seq["id2label"] = {str(i): f"L{i}" for i in range(20)}
    save("config", json.dumps(seq))
    seq.pop("id2label")
    seq["num_labels"] = 17
    save("config", json.dumps(seq))
    v5 = dict(arm)
    v5.pop("rope_theta", None)
    v5.pop("torch_dtype", None)
    v5["dtype"] = "bfloat16"
    v5["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192}
    save("config", json.dumps(v5))
    save("config", "{\n  \"architectures\": [\"LlamaForRewardModelWithGating\"],\n  \"hidden")
    save("config", "[]")
    save("config", "")


# ---- records -------------------------------------------------------------------

RECORD_LINES = [
    '{"id": 1.0, "messages": [{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}',
    '{"prompt":"P","response":"R","meta":{"x":[1,2]}}',
    '{"id":"p\\"1","prompt":"P","chosen":"C","rejected":"J"}',
    '{"id":{"a":[1,"]"]},"messages":[{"role":"system","content":"S"},{"role":"user","content":"U"}],'
    '"responses":["a","b","c"]}',
    '{"id": 12345678901234567890123, "input_ids":[128000, 9906, 0]}\r',
    '{"\\u0069d": "esc", "prompt":"a\\u0000b","response":""}',
    '   \r',
    '{"id":7,"prompt":"x","response":"\xff"}',
    '{"id":"s","prompt":"\\ud800","response":"r"}',
    '{"id":"s","prompt":"\\udc00x","response":"r"}',
    '{"id":3,"prompt":"x",',
    'not json at all',
    '[1,2]',
    '{"id":1}',
    '{"id":1,"prompt":"x"}',
    '{"id":1,"prompt":"x","messages":[]}',
    '{"id":1,"prompt":"x","response":"a","chosen":"b","rejected":"c"}',
    '{"id":1,"prompt":"x","chosen":"b"}',
    '{"id":1,"prompt":5,"response":"a"}',
    '{"id":1,"prompt":"x","response":null}',
    '{"id":1,"messages":"hi"}',
    '{"id":1,"messages":[]}',
    '{"id":1,"messages":[{"role":"usr","content":"x"}]}',
    '{"id":1,"messages":[{"role":"user","content":["x"]}]}',
    '{"id":1,"messages":[{"role":"user"}]}',
    '{"id":1,"messages":[5]}',
    '{"id":1,"prompt":"x","responses":[]}',
    '{"id":1,"prompt":"x","responses":["a",2]}',
    '{"id":1,"input_ids":[1,-2]}',
    '{"id":1,"input_ids":[1,2.5]}',
    '{"id":1,"input_ids":[]}',
    '{"id":1,"input_ids":[1],"prompt":"x"}',
    '{"id":1,"id":2,"prompt":"x","response":"y"}',
    '{"id":1,"prompt":"x","response":"y"} trailing',
    '{"id":"bad","input_ids":[1,999999]}',
    '{"id":null,"prompt":"Hi <|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n",'
    '"response":"ok"}',
    '{"id":[],"messages":[{"role":"user","content":"  \\t spaced \\u3000"},'
    '{"role":"assistant","content":"\\u00a0x\\u2029"}]}',
]


def records_seeds():
    with open(os.path.join(ROOT, "examples", "conversations.jsonl"), encoding="utf-8") as f:
        ex = [l.rstrip("\n") for l in f if l.strip()]
    for l in ex:
        save("records", l)
    for l in RECORD_LINES:
        save("records", l.encode("utf-8", "surrogateescape") if "\xff" not in l
             else l.encode("latin-1"))
    for g in xz_lines("tests/data/tokenizer/chat.jsonl.xz")[:8]:
        msgs = g["messages"]
        save("records", json.dumps({"id": g["name"], "messages": msgs}, ensure_ascii=False))
        if len(msgs) >= 2 and msgs[-1]["role"] == "assistant":
            save("records", json.dumps({"id": g["name"], "messages": msgs[:-1],
                                        "chosen": msgs[-1]["content"], "rejected": "no"}))
    # multi-line files: good and bad records mixed, blank lines between
    save("records", "\n".join(ex[:5]) + "\n")
    save("records", "\n".join([RECORD_LINES[1], "", RECORD_LINES[12], RECORD_LINES[4],
                               RECORD_LINES[3], "   "]))


# ---- tokenizer -------------------------------------------------------------------

def cut_utf8(s, n):
    b = s.encode("utf-8", "surrogatepass")[:n]
    return b.decode("utf-8", "ignore").encode("utf-8", "surrogatepass")


def tokenizer_seeds():
    per_family = {}
    for r in xz_lines("tests/data/tokenizer/corpus.jsonl.xz"):
        fam = r["name"].rstrip("0123456789_")
        if per_family.get(fam, 0) >= 4:
            continue
        per_family[fam] = per_family.get(fam, 0) + 1
        save("tokenizer", cut_utf8(r["text"], 512))
    for b in [b"ab\xff", b"\xc3", b"\xed\xa0\x80 surrogate", b"\xc0\xaf overlong",
              b"\xf4\x90\x80\x80 too big", b"ok \xe2\x82", b"", b"<|eot_id|>",
              b"a<|eot_id|>b<|start_header_id|>", b"<|reserved_special_token_250|><|eot_id",
              b"Hello world!", b"\x00\x00 nul", b" " * 70 + b"x", b"9" * 80]:
        save("tokenizer", b)


# ---- chat template -------------------------------------------------------------------

LLAMA31_FRAGMENT = ("{{- bos_token }}\n{%- if custom_tools is defined %}\n    {%- set tools = "
                    "custom_tools %}\n{%- endif %}\n{{- \"<|start_header_id|>system<|end_header_id|>"
                    "\\n\\n\" }}\n{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n")
EQUIVALENT = ("{# Llama 3 #}{% for message in messages %}{% set content = \"<|start_header_id|>\" ~ "
              "message.role ~ \"<|end_header_id|>\\n\\n\" ~ message.content | trim ~ \"<|eot_id|>\" %}"
              "{% if loop.first %}{% set content = bos_token ~ content %}{% endif %}{{ content }}"
              "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
              "<|end_header_id|>\n\n' }}{% endif %}")


def chat_seeds():
    convs = xz_lines("tests/data/tokenizer/chat.jsonl.xz")
    for i, g in enumerate(convs[:24]):
        body = b"\xff".join(m["role"].encode() + b"\xfe" +
                            m["content"].encode("utf-8", "surrogatepass")[:400]
                            for m in g["messages"])
        save("chat_template", bytes([(0, 1, 2, 3)[i % 4]]) + body)
    save("chat_template", b"\x01user\xfehi <|eot_id|> there\xffassistant\xfeok")
    save("chat_template", b"\x00hi <|eot_id|> there\xffok")
    save("chat_template", b"\x02  \t\xc2\xa0padded\xe3\x80\x80 \xff\x0b\x0c\x1c")
    save("chat_template", b"\x00<|eot_id|>\xfex\xff\xfe")
    save("chat_template", b"\x00user\xfe\xe2\x80\x8bx\xe2\x80\x8b\xffassistant\xfebad \xff\xfe")
    tmpl = json.loads(fixture_member("tests/data/llama3-tokenizer.tar.xz",
                                     "tokenizer_config.json"))["chat_template"]
    save("chat_template", b"\x04" + tmpl.encode())
    save("chat_template", b"\x04" + LLAMA31_FRAGMENT.encode())
    save("chat_template", b"\x04" + EQUIVALENT.encode())
    save("chat_template", b"\x04" + tmpl.replace("%}", " %}").encode())
    save("chat_template", b"\x04{# unterminated comment {{ 'x\\n' }} {% '")


def main():
    clear()
    safetensors_seeds()
    config_seeds()
    records_seeds()
    tokenizer_seeds()
    chat_seeds()
    total = 0
    for t in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, t))
        size = sum(os.path.getsize(os.path.join(OUT, t, f)) for f in files)
        total += size
        print(f"{t}: {len(files)} seeds, {size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
