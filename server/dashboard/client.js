// The cobra protocol over the browser's WebSocket, exactly as every client speaks it
// (/v2?appkey=..., subprotocol `json`, auth/handshake + auth/authenticate with the HMAC-MD5 hash).
// The secret is only used to compute the hash and is never kept by this object.
(function (root) {
  'use strict';

  /** An error answer of the server: `error` code, `reason` sentence. */
  class CobraError extends Error {
    constructor(action, body) {
      const reason = (body && (body.reason || body.error)) || 'error';
      super(reason);
      this.action = action;
      this.code = body && body.error;
      this.reason = reason;
    }
  }

  /** Where this page's server listens for WebSockets: the same origin, ws or wss. */
  function sameOriginUrl(appkey) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/v2?appkey=${encodeURIComponent(appkey)}`;
  }

  class CobraClient {
    constructor() {
      this.ws = null;
      this.nextId = 1;
      this.pending = new Map(); // request id -> {resolve, reject}
      this.subs = new Map(); // subscription id -> handlers
      this.node = '';
      this.onclose = null;
    }

    /** Opens the WebSocket and authenticates; resolves with the handshake data. */
    async connect(url, role, secret) {
      const ws = new WebSocket(url, 'json');
      this.ws = ws;
      ws.onmessage = (ev) => this.receive(ev.data);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error('cannot connect to the server (WebSocket refused: check the appkey)'));
        ws.onclose = (ev) => reject(new Error(`connection closed (${ev.code}${ev.reason ? ': ' + ev.reason : ''})`));
      });
      ws.onerror = null;
      ws.onclose = (ev) => {
        for (const p of this.pending.values()) p.reject(new Error('connection closed'));
        this.pending.clear();
        if (this.onclose) this.onclose(ev);
      };
      const hs = await this.request('auth/handshake', { method: 'role_secret', data: { role } });
      const data = hs.data || {};
      this.node = data.node || '';
      const hash = root.CobraMd5.authHash(secret, String(data.nonce));
      await this.request('auth/authenticate', { method: 'role_secret', credentials: { hash } });
      return data;
    }

    close() {
      if (this.ws) this.ws.close(1000);
    }

    send(pdu) {
      this.ws.send(JSON.stringify(pdu));
    }

    /** Sends a request; resolves with the `/ok` body, rejects with a CobraError on `/error`. */
    request(action, body) {
      const id = this.nextId++;
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        try {
          this.send({ action, id, body });
        } catch (e) {
          this.pending.delete(id);
          reject(e);
        }
      });
    }

    receive(text) {
      let pdu;
      try {
        pdu = JSON.parse(text);
      } catch (e) {
        return; // The server only sends JSON; nothing sensible to do with anything else.
      }
      const action = String(pdu.action || '');
      const body = pdu.body || {};
      if (action.startsWith('rtm/subscription/')) {
        const sub = this.subs.get(body.subscription_id);
        if (!sub) return;
        if (action === 'rtm/subscription/data') sub.onData(body.messages || [], body.position);
        else if (action === 'rtm/subscription/error') {
          this.subs.delete(body.subscription_id);
          sub.onError(new CobraError(action, body));
        } else if (sub.onInfo) sub.onInfo(body);
        return;
      }
      const p = this.pending.get(pdu.id);
      if (!p) return;
      this.pending.delete(pdu.id);
      if (action.endsWith('/ok')) p.resolve(body);
      else p.reject(new CobraError(action, body));
    }

    /**
     * Subscribes: `opts` = {channel, filter, position, batchSize}; handlers = {onData(messages,
     * position), onError(err), onInfo(body)}. Resolves with the subscribe/ok body.
     */
    async subscribe(id, opts, handlers) {
      const body = { subscription_id: id, channel: opts.channel };
      if (opts.filter) body.filter = opts.filter;
      if (opts.position) body.position = opts.position;
      if (opts.batchSize) body.batch_size = opts.batchSize;
      if (opts.fastForward) body.fast_forward = true;
      this.subs.set(id, handlers);
      try {
        return await this.request('rtm/subscribe', body);
      } catch (e) {
        this.subs.delete(id);
        throw e;
      }
    }

    async unsubscribe(id) {
      if (!this.subs.delete(id)) return;
      try {
        await this.request('rtm/unsubscribe', { subscription_id: id });
      } catch (e) {
        // Already gone on the server (an out_of_sync removed it): nothing to undo.
      }
    }
  }

  /** Compares two `<ms>-<seq>` positions: negative, zero or positive. */
  function comparePositions(a, b) {
    const pa = String(a).split('-');
    const pb = String(b).split('-');
    for (let i = 0; i < 2; i++) {
      const x = BigInt(/^\d+$/.test(pa[i] || '') ? pa[i] : 0);
      const y = BigInt(/^\d+$/.test(pb[i] || '') ? pb[i] : 0);
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  }

  root.Cobra = { CobraClient, CobraError, sameOriginUrl, comparePositions };
})(window);
