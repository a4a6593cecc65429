// A WebSocket echo peer on Node `ws` that speaks just enough cobra for the SDK's
// permessage-deflate interop test (tests/interop_deflate.rs), so the real `cobra::Client` runs
// against it unchanged.
//
//   NODE_PATH=.tools/node/node_modules node cobra_echo_node_ws.js SECRET 'PER_MESSAGE_DEFLATE_JSON'
//
// The second argument is `ws`'s `perMessageDeflate` server option as JSON (`false` disables
// compression). Prints `LISTENING <port>` once it accepts connections on 127.0.0.1.
//
// An `answer=STYLE` parameter in the request's query reshapes this server's 101 answer (same
// meaning, unusual form) for the SDK's handshake tolerance test (tests/interop_handshake.rs): the
// styles of `reshape` below, the same as in cobra_echo_pyws.py.
//
// Protocol: as tests/peers/cobra_echo_pyws.py (handshake, authenticate with HMAC-MD5, subscribe,
// publish echoed back as rtm/subscription/data, reads of `negotiated_extensions` and
// `wire_stats`: messages, their bytes after inflating and the socket's raw
// bytes in). Answers longer than FRAGMENT bytes are sent as a fragmented text message cut at
// fixed byte offsets, so fragments may split a UTF-8 sequence (legal: only the whole message must
// be valid UTF-8).
'use strict';
const crypto = require('crypto');
const { WebSocketServer } = require('ws');

const FRAGMENT = 10007;
const [secret, pmdJson] = process.argv.slice(2);
const perMessageDeflate = JSON.parse(pmdJson);

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate,
  maxPayload: 64 * 1024 * 1024,
  handleProtocols: (protocols) => (protocols.has('json') ? 'json' : false),
});

// The same permessage-deflate agreement, spelled out: the default window sizes written
// explicitly, numbers quoted, odd spacing around the separators.
function explicitParams(value) {
  const [name, ...params] = value.split(';').map((p) => p.trim());
  const keys = new Set(params.map((p) => p.split('=')[0].trim()));
  for (const k of ['server_max_window_bits', 'client_max_window_bits']) {
    if (!keys.has(k)) params.push(`${k}=15`);
  }
  return [name, ...params.map((p) => p.replace(/=\s*(\d+)$/, '="$1"'))].join(' ;  ');
}

// The 101's status line and headers (['HTTP/1.1 101 ...', 'Name: value', ...]) reshaped by `style`.
function reshape(style, lines) {
  let status = lines[0];
  let items = lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
  const is = (n, want) => n.toLowerCase() === want;
  if (style === 'lowercase') {
    const values = { upgrade: 'websocket', connection: 'upgrade' };
    items = items.map(([n, v]) => [n.toLowerCase(), values[n.toLowerCase()] || v]);
  } else if (style === 'uppercase') {
    const values = { upgrade: 'WEBSOCKET', connection: 'UPGRADE' };
    items = items.map(([n, v]) => [n.toUpperCase(), values[n.toLowerCase()] || v]);
  } else if (style === 'folded') {
    // obs-fold (RFC 9112 §5.2): a value continued on lines starting with SP or HTAB.
    items = items.map(([n, v]) => {
      if (is(n, 'sec-websocket-extensions')) return [n, v.replace(/;\s*/g, ';\r\n\t')];
      if (is(n, 'sec-websocket-accept')) return [n, `\r\n ${v}`];
      return [n, v];
    });
    items.push(['X-Folded', 'first\r\n  second']);
  } else if (style === 'extension-params') {
    items = items.map(([n, v]) => [n, is(n, 'sec-websocket-extensions') ? explicitParams(v) : v]);
  } else if (style === 'no-protocol') {
    items = items.filter(([n]) => !is(n, 'sec-websocket-protocol'));
  } else if (style === 'split-connection') {
    items = items.filter(([n]) => !is(n, 'connection'));
    items.push(['Connection', 'keep-alive'], ['Connection', 'Upgrade']);
  } else if (style === 'decorated') {
    status = 'HTTP/1.1 101 Web Socket Protocol Handshake';
    items = items.map(([n, v]) => [n, is(n, 'connection') ? 'Upgrade, keep-alive' : v]);
    items.push(['Server', 'nginx/1.25.3'], ['Set-Cookie', 'a=b; Path=/; HttpOnly'],
      ['Cache-Control', 'no-cache'], ['X-Info', 'caf\u00e9']);
  } else if (style === 'bare-status') {
    status = 'HTTP/1.1 101';
  } else if (style !== '' && style !== 'plain') {
    throw new Error(`unknown answer style ${style}`);
  }
  return [status, ...items.map(([n, v]) => `${n}:${v.startsWith('\r\n') ? '' : ' '}${v}`)];
}

// The response headers of each upgrade: reshaped if asked, and the negotiated extension reported.
wss.on('headers', (headers, req) => {
  const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
  req.cobraExtensions = line ? line.slice(line.indexOf(':') + 1).trim() : '';
  const style = new URL(req.url, 'http://x').searchParams.get('answer') || '';
  headers.splice(0, headers.length, ...reshape(style, headers));
});

function send(ws, obj) {
  const buf = Buffer.from(JSON.stringify(obj), 'utf8');
  if (buf.length <= FRAGMENT) {
    ws.send(buf, { binary: false });
    return;
  }
  for (let i = 0; i < buf.length; i += FRAGMENT) {
    ws.send(buf.subarray(i, i + FRAGMENT), { binary: false, fin: i + FRAGMENT >= buf.length });
  }
}

wss.on('connection', (ws, req) => {
  const negotiated = req.cobraExtensions || '';
  const counts = { messages_in: 0, payload_bytes_in: 0 };
  const subscriptions = new Map(); // channel -> [subscription id]
  let nonce = '';
  let dataId = 0;
  let position = 0;
  ws.on('message', (raw, isBinary) => {
    counts.messages_in += 1;
    counts.payload_bytes_in += raw.length;
    if (isBinary) {
      ws.close(1003, 'text only');
      return;
    }
    const pdu = JSON.parse(raw.toString('utf8'));
    const { action } = pdu;
    const id = pdu.id === undefined ? 0 : pdu.id;
    const body = pdu.body || {};
    const reply = (suffix, b) => send(ws, { action: `${action}/${suffix}`, id, body: b });
    if (action === 'auth/handshake') {
      nonce = crypto.randomBytes(16).toString('base64');
      const version = `node-ws-${require('ws/package.json').version}`;
      reply('ok', { data: { nonce, version, connection_id: 'nodews', node: 'nodews' } });
    } else if (action === 'auth/authenticate') {
      const want = crypto.createHmac('md5', secret).update(nonce).digest('base64');
      const got = body.credentials && body.credentials.hash;
      if (got === want) reply('ok', {});
      else reply('error', { error: 'authentication_failed' });
    } else if (action === 'rtm/subscribe') {
      const sid = body.subscription_id || body.channel;
      if (!subscriptions.has(body.channel)) subscriptions.set(body.channel, []);
      subscriptions.get(body.channel).push(sid);
      reply('ok', { position: `1-${position}`, subscription_id: sid });
    } else if (action === 'rtm/publish') {
      position += 1;
      const channels = body.channels || [body.channel];
      reply('ok', { position: `1-${position}` });
      for (const channel of channels) {
        for (const sid of subscriptions.get(channel) || []) {
          send(ws, {
            action: 'rtm/subscription/data',
            id: dataId++,
            body: { subscription_id: sid, position: `1-${position}`, messages: [body.message] },
          });
        }
      }
    } else if (action === 'rtm/read' && body.channel === 'negotiated_extensions') {
      reply('ok', { message: negotiated });
    } else if (action === 'rtm/read' && body.channel === 'wire_stats') {
      reply('ok', { message: { ...counts, wire_bytes_in: ws._socket.bytesRead } });
    } else {
      reply('error', { error: 'unsupported' });
    }
  });
});

wss.on('listening', () => {
  process.stdout.write(`LISTENING ${wss.address().port}\n`);
});
