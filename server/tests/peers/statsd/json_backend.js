// A statsd backend for the bot tests: one JSON line per flush on stdout with what the daemon parsed
// (counters, gauges, raw timer values), so a Rust test can read it. The daemon itself is the real
// npm `statsd`; only the printing is ours (its console backend prints util.inspect, not JSON).
function JsonBackend(startupTime, config, events) {
  events.on('flush', function (timestamp, metrics) {
    var drop = function (o) {
      var r = {};
      for (var k in o) { if (k.indexOf('statsd.') !== 0) { r[k] = o[k]; } }
      return r;
    };
    process.stdout.write(JSON.stringify({
      counters: drop(metrics.counters),
      gauges: drop(metrics.gauges),
      timers: drop(metrics.timers),
      bad_lines: metrics.counters['statsd.bad_lines_seen'] || 0,
    }) + '\n');
  });
}
exports.init = function (startupTime, config, events) {
  new JsonBackend(startupTime, config, events);
  return true;
};
