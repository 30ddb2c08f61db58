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
import net from "node:net";
import { performance } from "node:perf_hooks";

const cfg = JSON.parse(process.argv[2]);
const url = new URL(cfg.url);
const port = Number(url.port || 80);
const warmup = Math.round(cfg.rate * (cfg.warmup_s ?? 0));  // requests sent but not counted
const counted = Math.round(cfg.rate * cfg.duration_s);
const total = warmup + counted;
const interval = 1000 / cfg.rate;
const bodies = (cfg.bodies ?? [null]).map((b) => (b === null ? null : Buffer.from(b)));
const tokens = cfg.tokens ?? [null];
const latencies = new Float64Array(total);
const statuses = {}, warmupStatuses = {};
let sent = 0, done = 0, errors = 0, warmupErrors = 0, lateSends = 0;

// HTTP/1.1 over plain sockets, one request at a time per keep-alive connection, as a browser or
// an HTTP client library does. Node's http client cost 0.25 cores at 1,000 requests/s, as much as
// a bare aiohttp server answering them, on the same two cores as the system measured (which runs
// the load generator too); these sockets cost a fraction of that.
// Requests go round the idle connections in turn (fifo), opening one more when none is idle:
// reusing the connection freed last (lifo) put most requests on a handful of connections, and as
// the API's processes share the port by connection (SO_REUSEPORT), one process took 0.70 cores
// where the other took 0.06-0.42 (bench/fanout.py at 1,000 reads/s). Many independent clients,
// or a balancer in front, spread requests over connections; fifo does the same here.
const MAX_CONNECTIONS = 1024;
const head = `${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
  Object.entries(cfg.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join("");
const method = cfg.method ?? "GET";
const idle = [];  // connections with nothing in flight, oldest first
const queued = [];  // requests waiting for a connection (all MAX_CONNECTIONS busy)
const live = new Set();
let connections = 0;

function request(i) {
  const token = tokens[i % tokens.length];
  const body = bodies[i % bodies.length];
  let text = `${method} ${head}`;
  if (token) text += `Authorization: Bearer ${token}\r\n`;
  if (body !== null) text += `Content-Length: ${body.length}\r\n`;
  text += "\r\n";
  return body === null ? Buffer.from(text) : Buffer.concat([Buffer.from(text), body]);
}

function send(i, due) {
  const job = { i, due, bytes: request(i) };
  const conn = idle.shift();
  if (conn) begin(conn, job);
  else if (connections < MAX_CONNECTIONS) open(job);
  else queued.push(job);
}

function open(job) {
  connections++;
  const sock = net.connect({ host: url.hostname, port });
  const conn = { sock, job, buf: null, closed: false };
  live.add(conn);
  sock.setNoDelay(true);
  sock.on("connect", () => sock.write(job.bytes));
  sock.on("data", (chunk) => received(conn, chunk));
  const lost = () => {
    if (conn.closed) return;
    conn.closed = true;
    connections--;
    live.delete(conn);
    const at = idle.indexOf(conn);
    if (at >= 0) idle.splice(at, 1);
    if (conn.job) answered(conn.job, null);
    conn.job = null;
    const next = queued.shift();
    if (next) open(next);
  };
  sock.on("error", lost);
  sock.on("close", lost);
}

function begin(conn, job) {
  conn.job = job;
  conn.sock.write(job.bytes);
}

// The end of one response in buf (status, whether the server closes), or null when incomplete.
function parse(buf) {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const headers = buf.toString("latin1", 0, end).toLowerCase();
  const status = Number(headers.slice(9, 12));
  const close = /\r\nconnection: *close/.test(headers);
  const length = /\r\ncontent-length: *(\d+)/.exec(headers);
  if (length) {
    const size = end + 4 + Number(length[1]);
    return buf.length >= size ? { status, close, size } : null;
  }
  if (!/\r\ntransfer-encoding: *chunked/.test(headers)) return { status, close, size: end + 4 };
  let at = end + 4;
  for (;;) {  // chunked: size line, data, CRLF; a zero size (and its CRLF) ends it
    const line = buf.indexOf("\r\n", at);
    if (line < 0) return null;
    const n = parseInt(buf.toString("latin1", at, line), 16);
    at = line + 2 + n + 2;
    if (at > buf.length) return null;
    if (n === 0) return { status, close, size: at };
  }
}

function received(conn, chunk) {
  conn.buf = conn.buf ? Buffer.concat([conn.buf, chunk]) : chunk;
  const reply = parse(conn.buf);
  if (reply === null) return;
  conn.buf = reply.size < conn.buf.length ? conn.buf.subarray(reply.size) : null;
  const job = conn.job;
  conn.job = null;
  answered(job, reply.status);
  if (reply.close) {
    conn.sock.destroy();
    return;
  }
  const next = queued.shift();
  if (next) begin(conn, next);
  else idle.push(conn);
}

function answered(job, status) {
  latencies[job.i] = performance.now() - job.due;
  if (status === null) {
    if (job.i < warmup) warmupErrors++; else errors++;
  } else {
    const into = job.i < warmup ? warmupStatuses : statuses;
    into[status] = (into[status] ?? 0) + 1;
  }
  finish();
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
  // After the answer being handled now is done with its connection.
  setImmediate(() => { for (const conn of live) conn.sock.destroy(); });
}
