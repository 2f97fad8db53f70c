import autocannon from 'autocannon';
const url = process.argv[2];
const t = Date.now();
const r = await autocannon({ url, connections: Number(process.argv[3] ?? 10), duration: 3 });
console.log(url, Date.now() - t, 'rps', r.requests.average, 'p50', r.latency.p50, 'non2xx', r.non2xx, 'err', r.errors, 'timeouts', r.timeouts);
