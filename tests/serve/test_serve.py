#!/usr/bin/env python3
"""test_serve.py — `armo serve` on loopback, end to end (stdlib only).

Starts `armo serve` (--port 0: a free port, read from its "listening on"
line) with the bundled tiny models and checks:
  * every endpoint against `armo score`'s output for the same records:
    /score (a list, one object, a bad record in a list), /get_reward (the
    queries are the records' chat-templated text, built here from the
    template's definition; n samples of one prompt against armo score's
    best-of-N record, whose prompt prefix is shared the same way),
    /classify in vLLM's and SGLang's shapes; identical numbers, not close ones;
  * the exact bodies OpenRLHF's remote-RM client and vLLM / SGLang /classify
    clients send (shared/notes/protocols.md), an empty OpenRLHF query list;
  * /health, /v1/models, /metrics;
  * malformed JSON and bad fields (400 naming the field), oversized bodies and
    requests with too many tokens (413), unknown routes (404), wrong methods
    (405), --api-key (401), a full queue (503 + Retry-After), a request past
    --request-timeout (504);
  * a warning when bound beyond loopback; a single-head RM;
  * a slow client and a client that disconnects mid-request: the server keeps
    serving; SIGTERM while a request is queued: it is answered, exit 0.
Servers are stopped by their PID.  No timing is asserted: waits poll the
server's own /metrics.

usage: test_serve.py ARMO_EXE MODELS_DIR"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ARMO, MODELS = sys.argv[1], sys.argv[2]
ARMORM = os.path.join(MODELS, "tiny-armorm")
SEQCLS = os.path.join(MODELS, "tiny-rm-llama3")
HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "examples", "conversations.jsonl")
FAILS = []
CHECKS = [0]


def check(cond, what):
    CHECKS[0] += 1
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, file=sys.stderr)


class Server:
    """An `armo serve` process on a free loopback port."""

    def __init__(self, model, *extra):
        cmd = [ARMO, "serve", "--model", model, "--device", "cpu", "--port", "0",
               "--threads", "1", "--http-threads", "2"] + list(extra)
        self.p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.port = None
        deadline = time.time() + 60
        while self.port is None:
            line = self.p.stderr.readline()
            if not line:
                raise RuntimeError("armo serve exited: " + "".join(self.log))
            self.log.append(line)
            m = re.search(r"listening on http://\S+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if time.time() > deadline:
                raise RuntimeError("armo serve did not start")
        self.t = threading.Thread(target=self._drain, daemon=True)
        self.t.start()

    def _drain(self):
        for line in self.p.stderr:
            self.log.append(line)

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.conn()
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        if conn is None:
            c.close()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return r.status, parsed, r

    def metric(self, name):
        _, text, _ = self.request("GET", "/metrics")
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else None

    def wait_metric(self, name, at_least, limit=30.0):
        end = time.time() + limit
        while time.time() < end:
            v = self.metric(name)
            if v is not None and v >= at_least:
                return True
            time.sleep(0.02)
        return False

    def stop(self, sig=signal.SIGTERM, send=True):
        """Stops the server by its PID (send=False: it was signalled already,
        and a second signal would end it at once); its exit status."""
        if send and self.p.poll() is None:
            os.kill(self.p.pid, sig)
        try:
            rc = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(self.p.pid, signal.SIGKILL)
            rc = self.p.wait()
        self.t.join(timeout=5)
        return rc


OFFLINE = {}  # (model, record) -> armo score's output object, for records that score


def offline(model, records):
    """armo score's output objects for records (a list of dicts); each
    record's output depends on that record alone (but an error's "line N"),
    so outputs that are not errors are kept and reused."""
    keys = [(model, json.dumps(r, sort_keys=True)) for r in records]
    if all(k in OFFLINE for k in keys):
        return [OFFLINE[k] for k in keys]
    out = offline_run(model, records)
    for k, o in zip(keys, out):
        if "error" not in o:
            OFFLINE[k] = o
    return out


def offline_run(model, records, extra=()):
    """armo score's output objects for records (a list of dicts)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
        path = f.name
    try:
        out = subprocess.run([ARMO, "score", "--model", model, "--device", "cpu", "--quiet",
                              "--threads", "1", "--input", path] + list(extra),
                             capture_output=True, text=True)
    finally:
        os.unlink(path)
    return [json.loads(l) for l in out.stdout.splitlines()]


def template(messages):
    """The Llama-3-Instruct chat template as DESIGN §3 defines it (the text the
    policy's tokenizer decodes with special tokens kept)."""
    s = "<|begin_of_text|>"
    for m in messages:
        s += "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>" % (m["role"],
                                                                        m["content"].strip())
    return s


def conv(prompt, response):
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


EXAMPLE_RECORDS = [json.loads(l) for l in open(EXAMPLES) if l.strip()]
PROMPT = "Translate 'good morning' into French, Spanish and German."
RESPONSES = ["Bonjour, buenos días, guten Morgen.", "Bonsoir, buenas noches, gute Nacht.",
             "French: bonjour. Spanish: buenos días. German: guten Morgen.", "Guten Morgen!"]
OTHER = [("What is 2+2?", "4."), ("Name a prime number.", "7 is prime."),
         ("Say hello.", "Hello there, how can I help you today?")]


def test_score(s):
    st, body, _ = s.request("POST", "/score", EXAMPLE_RECORDS)
    want = offline(ARMORM, EXAMPLE_RECORDS)
    check(st == 200 and body == want, "/score list equals armo score's lines (%d)" % st)
    st, body, _ = s.request("POST", "/score", EXAMPLE_RECORDS[3])
    check(st == 200 and body == want[3], "/score one pair record equals armo score's line")
    # a bad record in a list fails alone, with armo score's per-record error object
    mixed = [EXAMPLE_RECORDS[0], {"id": "bad", "prompt": 5, "response": "x"}, EXAMPLE_RECORDS[2]]
    st, body, _ = s.request("POST", "/score", mixed)
    want_mixed = offline(ARMORM, mixed)
    check(st == 200 and body == want_mixed, "/score list with a bad record equals armo score's")
    check(st == 200 and "error" in body[1] and "prompt" in body[1]["error"]
          and body[1]["id"] == "bad", "the bad record's error names the field: %r" % (body,))
    st, body, _ = s.request("POST", "/score", {"id": 7, "prompt": "hi"})
    check(st == 400 and body.get("id") == 7 and "response" in body.get("error", ""),
          "/score one bad record: 400 naming the field (%d %r)" % (st, body))
    st, body, _ = s.request("POST", "/score", [])
    check(st == 200 and body == [], "/score empty list")


def test_get_reward(s):
    # OpenRLHF's client: requests.post(url, json={"query", "prompts", "labels"},
    # headers={"Content-Type": "application/json"}); the query text holds the
    # template (decoded with special tokens kept)
    recs = [{"id": i, "prompt": p, "response": r} for i, (p, r) in enumerate(OTHER)]
    queries = [template(conv(p, r)) for p, r in OTHER]
    prompts = [template([{"role": "user", "content": p}]) for p, _ in OTHER]
    body = {"query": queries, "prompts": prompts, "labels": ["", "", ""]}
    st, out, r = s.request("POST", "/get_reward", body)
    want = [o["score"] for o in offline(ARMORM, recs)]
    check(st == 200 and out.get("rewards") == want and out.get("scores") == want,
          "/get_reward equals armo score (%d %r vs %r)" % (st, out.get("rewards"), want))
    logs = out.get("extra_logs", {})
    check(len(logs) == 19 and all(len(v) == 3 for v in logs.values()),
          "/get_reward extra_logs: 19 objectives x 3 queries")
    check(r.getheader("Content-Type") == "application/json", "/get_reward content type")
    # current clients: one sample per request
    st, out, _ = s.request("POST", "/get_reward", {"query": queries[:1], "prompts": prompts[:1],
                                                   "labels": [""]})
    check(st == 200 and out["rewards"] == want[:1], "/get_reward one sample")
    # n samples of one prompt (GRPO): the prompt shared, as in armo score's best-of-N
    bon = [{"id": "g", "prompt": PROMPT, "responses": RESPONSES}]
    want_bon = [x["score"] for x in offline(ARMORM, bon)[0]["responses"]]
    st, out, _ = s.request("POST", "/get_reward", {"query": [template(conv(PROMPT, r))
                                                             for r in RESPONSES]})
    check(st == 200 and out["rewards"] == want_bon,
          "/get_reward n samples of one prompt equal armo score's best-of-N (%r vs %r)" %
          (out.get("rewards"), want_bon))
    # several URLs: all but the first may get empty lists
    st, out, _ = s.request("POST", "/get_reward", {"query": [], "prompts": [], "labels": []})
    check(st == 200 and out == {"rewards": []}, "/get_reward empty query -> {\"rewards\": []}")
    # a query without an assistant turn has no gating position
    st, out, _ = s.request("POST", "/get_reward", {"query": [queries[0], prompts[1]]})
    check(st == 400 and "query[1]" in out.get("error", "") and "Token pattern" in out["error"],
          "/get_reward query without an assistant turn: 400 naming it (%r)" % (out,))


def test_classify(s):
    texts = [template(conv(p, r)) for p, r in OTHER]
    recs = [{"prompt": p, "response": r} for p, r in OTHER]
    want = offline(ARMORM, recs)
    # vLLM: {"model", "input": [...]}
    st, out, _ = s.request("POST", "/classify", {"model": "tiny-armorm", "input": texts})
    ok = st == 200 and out.get("object") == "list" and out["id"].startswith("classify-")
    ok = ok and [d["probs"] for d in out["data"]] == [[w["score"]] for w in want]
    ok = ok and [d["index"] for d in out["data"]] == [0, 1, 2]
    ok = ok and all(d["num_classes"] == 1 for d in out["data"])
    ok = ok and [d["rewards"] for d in out["data"]] == [w["rewards"] for w in want]
    ok = ok and out["usage"]["prompt_tokens"] == sum(w["tokens"] for w in want)
    check(ok, "/classify vLLM shape equals armo score (%d %r)" % (st, out))
    st, out, _ = s.request("POST", "/v1/classify", {"model": "tiny-armorm", "input": texts[0]})
    check(st == 200 and out["data"][0]["probs"] == [want[0]["score"]], "/v1/classify one string")
    # vLLM chat form: messages
    msgs = conv(*OTHER[1])
    st, out, _ = s.request("POST", "/classify", {"model": "tiny-armorm", "messages": msgs})
    check(st == 200 and out["data"][0]["probs"] == [want[1]["score"]], "/classify messages")
    # SGLang: {"model", "text": [...]} -> a list; a string -> one object
    st, out, _ = s.request("POST", "/classify", {"model": "tiny-armorm", "text": texts})
    check(st == 200 and isinstance(out, list) and [o["embedding"] for o in out] ==
          [[w["score"]] for w in want], "/classify SGLang shape (%r)" % (out,))
    st, out, _ = s.request("POST", "/classify", {"model": "tiny-armorm", "text": texts[2]})
    check(st == 200 and isinstance(out, dict) and out["embedding"] == [want[2]["score"]] and
          out["meta_info"]["prompt_tokens"] == want[2]["tokens"], "/classify SGLang one text")
    st, out, _ = s.request("POST", "/classify", {"model": "tiny-armorm", "input": [texts[0], 3]})
    check(st == 400 and "input[1]" in out.get("error", ""), "/classify bad input names it")


def test_get_routes(s, after_scoring):
    st, out, _ = s.request("GET", "/health")
    check(st == 200 and out == {"status": "ok"}, "/health")
    st, out, _ = s.request("GET", "/v1/models")
    check(st == 200 and out["data"][0]["id"] == "tiny-armorm", "/v1/models lists the model")
    st, text, r = s.request("GET", "/metrics")
    check(st == 200 and r.getheader("Content-Type").startswith("text/plain"), "/metrics type")
    for name in ("armo_requests_total{", "armo_records_total", "armo_tokens_total",
                 "armo_queue_depth", "armo_batch_tokens_bucket", "armo_request_seconds_bucket",
                 "armo_process_resident_bytes"):
        check(name in text, "/metrics has " + name)
    check(not after_scoring or re.search(r'armo_requests_total\{endpoint="/score",code="200"\} [1-9]', text),
          "/metrics counts /score 200s")


def test_malformed(s):
    st, out, _ = s.request("POST", "/score", b'{"id": 1, "messages": [')
    check(st == 400 and "not valid JSON" in out.get("error", ""), "invalid JSON: 400")
    st, out, _ = s.request("POST", "/score", b"5")
    check(st == 400, "/score body 5: 400")
    st, out, _ = s.request("POST", "/get_reward", {"query": "text"})
    check(st == 400 and "query" in out.get("error", ""), "query not a list: 400 naming it")
    st, out, _ = s.request("POST", "/get_reward", {"query": ["a", 5]})
    check(st == 400 and "query[1]" in out.get("error", ""), "query[1] not a string: 400")
    st, out, _ = s.request("POST", "/get_reward", {"prompts": []})
    check(st == 400 and "query" in out.get("error", ""), "no query: 400")
    st, out, _ = s.request("POST", "/classify", {"model": "x"})
    check(st == 400 and "input" in out.get("error", ""), "/classify without input: 400")
    st, out, _ = s.request("POST", "/nope", {})
    check(st == 404, "unknown route: 404")
    st, out, _ = s.request("GET", "/score")
    check(st == 405, "GET /score: 405")
    st, out, _ = s.request("POST", "/score", b"")
    check(st == 400, "empty body: 400")


def test_slow_and_gone_clients(s):
    # a slow client: half a request, then a pause; others are served meanwhile
    slow = socket.create_connection(("127.0.0.1", s.port))
    body = json.dumps(EXAMPLE_RECORDS[0]).encode()
    head = ("POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % len(body)).encode()
    slow.sendall(head + body[:10])
    st, out, _ = s.request("POST", "/score", EXAMPLE_RECORDS[2])
    check(st == 200 and "score" in out, "served while a slow client is sending")
    slow.sendall(body[10:])
    resp = b""
    slow.settimeout(60)
    while b"\r\n\r\n" not in resp or not resp.rstrip().endswith(b"}"):
        chunk = slow.recv(65536)
        if not chunk:
            break
        resp += chunk
    slow.close()
    got = json.loads(resp.split(b"\r\n\r\n", 1)[1])
    check(resp.startswith(b"HTTP/1.1 200") and got == offline(ARMORM, [EXAMPLE_RECORDS[0]])[0],
          "the slow client's request is answered correctly")
    # clients that disconnect mid-request: while sending, and while queued
    big = json.dumps(EXAMPLE_RECORDS * 20).encode()
    for cut in (len(big) // 2, len(big)):
        g = socket.create_connection(("127.0.0.1", s.port))
        g.sendall(("POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" %
                   len(big)).encode() + big[:cut])
        g.close()
    st, out, _ = s.request("POST", "/score", EXAMPLE_RECORDS)
    check(st == 200 and out == offline(ARMORM, EXAMPLE_RECORDS),
          "still serving after clients disconnected mid-request")
    check(s.p.poll() is None, "the server is still running")


def test_keepalive(s):
    c = s.conn()
    want = offline(ARMORM, EXAMPLE_RECORDS)
    for i in range(5):
        st, out, _ = s.request("POST", "/score", EXAMPLE_RECORDS[i], conn=c)
        check(st == 200 and out == want[i], "keep-alive request %d" % i)
    c.close()


def test_limits():
    s = Server(ARMORM, "--max-body-bytes", "4096", "--max-request-tokens", "200",
               "--api-key", "sekret")
    try:
        auth = {"Authorization": "Bearer sekret"}
        st, out, r = s.request("POST", "/score", EXAMPLE_RECORDS[0])
        check(st == 401 and r.getheader("WWW-Authenticate") == "Bearer", "no API key: 401")
        st, out, _ = s.request("POST", "/score", EXAMPLE_RECORDS[0],
                               {"Authorization": "Bearer wrong"})
        check(st == 401, "wrong API key: 401")
        st, out, _ = s.request("GET", "/health")
        check(st == 200, "/health needs no key")
        st, out, _ = s.request("POST", "/score", EXAMPLE_RECORDS[0], auth)
        check(st == 200 and out == offline(ARMORM, [EXAMPLE_RECORDS[0]])[0], "the key: 200")
        st, out, _ = s.request("POST", "/score", [EXAMPLE_RECORDS[0]] * 60, auth)
        check(st == 413 and "max-body-bytes" in out.get("error", ""), "body too large: 413")
        st, out, _ = s.request("POST", "/score", [EXAMPLE_RECORDS[1]] * 4, auth)
        check(st == 413 and "max-request-tokens" in out.get("error", ""),
              "too many tokens: 413 (%d %r)" % (st, out))
        # a body sent without Content-Length (chunked) and too large: 413 too
        c = s.conn()
        c.putrequest("POST", "/score")
        c.putheader("Transfer-Encoding", "chunked")
        c.putheader("Authorization", "Bearer sekret")
        c.endheaders()
        chunk = json.dumps([EXAMPLE_RECORDS[0]] * 60).encode()
        c.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
        r = c.getresponse()
        check(r.status == 413, "chunked body too large: 413 (%d)" % r.status)
        c.close()
    finally:
        check(s.stop() == 0, "limits server exits 0 on SIGTERM")


def test_full_and_timeout():
    # batches would wait 60 s to fill; requests time out after 3 s (and are
    # failed then, not after the wait); the queue holds 4
    s = Server(ARMORM, "--max-queue", "4", "--max-wait-ms", "60000", "--request-timeout", "3")
    try:
        res = {}
        a = threading.Thread(target=lambda: res.update(a=s.request("POST", "/score",
                                                                  EXAMPLE_RECORDS[:3])))
        a.start()
        check(s.wait_metric("armo_queue_depth", 3), "three records queued")
        st, out, r = s.request("POST", "/score", EXAMPLE_RECORDS[:2])
        check(st == 503 and r.getheader("Retry-After") == "1", "queue full: 503 + Retry-After")
        a.join()
        st, out, _ = res["a"]
        check(st == 504 and "timeout" in out.get("error", ""), "past --request-timeout: 504")
        st, out, _ = s.request("POST", "/score", EXAMPLE_RECORDS[:5])
        check(st == 413 and "max-queue" in out.get("error", ""), "more records than the queue")
    finally:
        check(s.stop() == 0, "queue server exits 0")


def test_sigterm_drain():
    # a batch would wait 60 s to fill: the drain sends it at once
    s = Server(ARMORM, "--max-wait-ms", "60000")
    res = {}
    a = threading.Thread(target=lambda: res.update(a=s.request("POST", "/score",
                                                              EXAMPLE_RECORDS)))
    a.start()
    check(s.wait_metric("armo_queue_depth", 1), "a request queued before SIGTERM")
    os.kill(s.p.pid, signal.SIGTERM)
    a.join()
    st, out, _ = res["a"]
    check(st == 200 and out == offline(ARMORM, EXAMPLE_RECORDS), "in-flight request answered")
    rc = s.stop(send=False)
    check(rc == 0, "exit 0 after SIGTERM (%r)" % rc)
    try:
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    check(refused, "no longer accepting after the drain")


def test_single_head():
    # also: bound to every address (not loopback only), it warns
    s = Server(SEQCLS, "--host", "0.0.0.0")
    check(any("warning: listening on 0.0.0.0" in l for l in s.log), "non-loopback bind warns")
    try:
        texts = [template(conv(p, r)) for p, r in OTHER]
        want = offline(SEQCLS, [{"prompt": p, "response": r} for p, r in OTHER])
        st, out, _ = s.request("POST", "/get_reward", {"query": texts})
        check(st == 200 and out["rewards"] == [w["score"] for w in want] and
              "extra_logs" not in out, "single-head RM /get_reward equals armo score")
        st, out, _ = s.request("POST", "/score", EXAMPLE_RECORDS)
        check(st == 200 and out == offline(SEQCLS, EXAMPLE_RECORDS), "single-head RM /score")
    finally:
        check(s.stop() == 0, "single-head server exits 0")


def main():
    # every reference in two armo score runs (the server starts meanwhile)
    offline(ARMORM, EXAMPLE_RECORDS + [{"prompt": p, "response": r} for p, r in OTHER] +
            [{"id": i, "prompt": p, "response": r} for i, (p, r) in enumerate(OTHER)] +
            [{"id": "g", "prompt": PROMPT, "responses": RESPONSES}])
    offline(SEQCLS, EXAMPLE_RECORDS + [{"prompt": p, "response": r} for p, r in OTHER])
    s = Server(ARMORM)
    try:
        test_get_routes(s, False)
        test_score(s)
        test_get_reward(s)
        test_classify(s)
        test_malformed(s)
        test_keepalive(s)
        test_slow_and_gone_clients(s)
        test_get_routes(s, True)
    finally:
        check(s.stop() == 0, "main server exits 0 on SIGTERM")
    test_limits()
    test_full_and_timeout()
    test_sigterm_drain()
    test_single_head()
    print("test_serve: %d checks, %d failed" % (CHECKS[0], len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
