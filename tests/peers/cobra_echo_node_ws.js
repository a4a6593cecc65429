// A WebSocket echo peer on Node `ws` that speaks just enough cobra for the SDK's
// permessage-deflate interop test (tests/interop_deflate.rs), so the real `cobra::Client` runs
// against it unchanged.
//
//   NODE_PATH=.tools/node/node_modules node cobra_echo_node_ws.js SECRET 'PER_MESSAGE_DEFLATE_JSON'
//
// The second argument is `ws`'s `perMessageDeflate` server option as JSON (`false` disables
// compression). Prints `LISTENING <port>` once it accepts connections on 127.0.0.1.
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

// The response headers of each upgrade, to report the negotiated extension.
wss.on('headers', (headers, req) => {
  const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
  req.cobraExtensions = line ? line.slice(line.indexOf(':') + 1).trim() : '';
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
