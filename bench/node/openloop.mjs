// Open-loop HTTP load at a fixed offered rate (Node built-ins only).
//
//   node openloop.mjs '{"url": ..., "rate": 1000, "duration_s": 20, "method": "POST",
//                       "headers": {...}, "bodies": ["...", ...], "tokens": ["...", ...],
//                       "warmup_s": 3, "dump": "latencies.json"}'
//
// Request i is due at start + i/rate and is sent then, whatever happened to earlier requests
// (no connection limit makes it wait), and its latency is measured from that due time, so a slow
// server shows up as latency instead of as a lower request rate (no coordinated omission).
// Bodies and bearer tokens, when several are given, are used round-robin.
// With "warmup_s", the same process first runs at the same rate for that long and only then
// starts counting, on the connections the warm-up opened: a generator started cold opens its
// connections in its first second, all at once (nothing is idle to reuse yet), and in runs of
// bench/fanout.py at 1,000 reads/s that first half second held a quarter of the requests over
// 10 ms, at 25-250 ms. A separate warm-up process did not help: its connections closed with it.
// Prints one JSON object: counts, status codes, latency percentiles in milliseconds (of the
// counted requests; the warm-up's own under "warmup"). With "dump", the counted requests'
// latencies are also written to that file in due order (bench/common.py: when the slow requests
// happened).
import fs from "node:fs";
import http from "node:http";
import { performance } from "node:perf_hooks";

const cfg = JSON.parse(process.argv[2]);
const url = new URL(cfg.url);
// Requests go round the open keep-alive connections (fifo). Node's default (lifo) reuses the
// connection freed last, so a handful carried most requests, and as the API's processes share the
// port by connection (SO_REUSEPORT), one process took 0.70 cores where the other took 0.06-0.42
// (bench/fanout.py at 1,000 reads/s). Many independent clients, or a balancer in front, spread
// requests over connections; fifo does the same here (measured split 0.60/0.53, 0.49/0.46).
const agent = new http.Agent({ keepAlive: true, maxSockets: 1024, scheduling: "fifo" });
const warmup = Math.round(cfg.rate * (cfg.warmup_s ?? 0));  // requests sent but not counted
const counted = Math.round(cfg.rate * cfg.duration_s);
const total = warmup + counted;
const interval = 1000 / cfg.rate;
const bodies = cfg.bodies ?? [null];
const tokens = cfg.tokens ?? [null];
const latencies = new Float64Array(total);
const statuses = {}, warmupStatuses = {};
let sent = 0, done = 0, errors = 0, warmupErrors = 0, lateSends = 0;

function send(i, due) {
  const headers = { ...(cfg.headers ?? {}) };
  const token = tokens[i % tokens.length];
  if (token) headers["Authorization"] = `Bearer ${token}`;
  const body = bodies[i % bodies.length];
  if (body !== null) headers["Content-Length"] = Buffer.byteLength(body);
  const req = http.request(
    { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: cfg.method ?? "GET", headers },
    (res) => {
      res.resume();
      res.on("end", () => {
        latencies[i] = performance.now() - due;
        const into = i < warmup ? warmupStatuses : statuses;
        into[res.statusCode] = (into[res.statusCode] ?? 0) + 1;
        finish();
      });
    },
  );
  req.on("error", () => {
    latencies[i] = performance.now() - due;
    if (i < warmup) warmupErrors++; else errors++;
    finish();
  });
  if (body !== null) req.write(body);
  req.end();
}

function finish() {
  done++;
  if (done === total) report();
}

const start = performance.now() + 50;
function tick() {
  const now = performance.now();
  while (sent < total && start + sent * interval <= now) {
    const due = start + sent * interval;
    if (now - due > 5 && sent >= warmup) lateSends++;  // the generator itself fell behind by more than 5 ms
    send(sent, due);
    sent++;
  }
  if (sent < total) setTimeout(tick, Math.max(0, Math.min(1, start + sent * interval - performance.now())));
}
setTimeout(tick, 50);

function pct(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((q / 100) * (sorted.length - 1))))];
}

const r = (x) => Math.round(x * 1000) / 1000;

function summary(values) {
  const sorted = Array.from(values).sort((a, b) => a - b);
  return { p50: r(pct(sorted, 50)), p90: r(pct(sorted, 90)), p99: r(pct(sorted, 99)),
           p999: r(pct(sorted, 99.9)), max: r(sorted[sorted.length - 1]) };
}

function report() {
  // The counted requests' time: from the first one's due time to the last answer.
  const elapsed = (performance.now() - (start + warmup * interval)) / 1000;
  const out = {
    offered_per_s: cfg.rate, requests: counted, duration_s: r(elapsed), completed_per_s: r(counted / elapsed),
    statuses, errors, late_sends: lateSends, latency_ms: summary(latencies.subarray(warmup)),
  };
  if (warmup) {
    out.warmup = { seconds: cfg.warmup_s, requests: warmup, statuses: warmupStatuses, errors: warmupErrors,
                   latency_ms: summary(latencies.subarray(0, warmup)) };
  }
  if (cfg.dump) fs.writeFileSync(cfg.dump, JSON.stringify(Array.from(latencies.subarray(warmup))));
  console.log(JSON.stringify(out));
  agent.destroy();
}
