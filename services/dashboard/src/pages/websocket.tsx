import type { MqttClient } from 'mqtt';
import { useEffect, useRef, useState } from 'preact/hooks';
import { listeners } from './listeners';
import { ErrorLine, Header } from '../ui/table';

interface Received {
  n: number;
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  at: string;
}

/** The port of the first running plain WebSocket listener, from its bind ("0.0.0.0:8083", ":8083" or "8083"). */
async function wsPort(): Promise<{ port: string; path: string } | undefined> {
  const all = await listeners();
  const ws = all.find((l) => l.type === 'ws' && l.enable !== false);
  if (!ws) return undefined;
  const port = ws.bind.slice(ws.bind.lastIndexOf(':') + 1);
  return { port, path: ws.websocket?.mqtt_path ?? ws.path ?? '/mqtt' };
}

/** A QoS 0/1/2 picker. */
function QosSelect(p: { value: number; onChange(qos: number): void }) {
  return (
    <select value={p.value} onChange={(e) => p.onChange(Number((e.target as HTMLSelectElement).value))}>
      {[0, 1, 2].map((q) => (
        <option key={q} value={q}>
          QoS {q}
        </option>
      ))}
    </select>
  );
}

/** An MQTT client in the browser (mqtt.js over WebSocket) against the broker's own ws listener. */
export function WebSocketPage() {
  const [url, setUrl] = useState('');
  const [clientId, setClientId] = useState(`dashboard_${Math.random().toString(16).slice(2, 10)}`);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [state, setState] = useState('disconnected');
  const [error, setError] = useState<string | undefined>(undefined);
  const [sub, setSub] = useState({ topic: 'testtopic/#', qos: 0 });
  const [subs, setSubs] = useState<string[]>([]);
  const [pub, setPub] = useState({ topic: 'testtopic/1', payload: '{ "msg": "hello" }', qos: 0, retain: false });
  const [msgs, setMsgs] = useState<Received[]>([]);
  const client = useRef<MqttClient | undefined>(undefined);
  const counter = useRef(0);

  useEffect(() => {
    wsPort().then(
      (w) => setUrl(`ws://${location.hostname}:${w?.port ?? '8083'}${w?.path ?? '/mqtt'}`),
      () => setUrl(`ws://${location.hostname}:8083/mqtt`),
    );
    return () => void client.current?.end(true);
  }, []);

  const connect = async (): Promise<void> => {
    setError(undefined);
    client.current?.end(true);
    // mqtt.js's browser build is loaded with this page's first connect, not with the app.
    const { default: mqtt } = await import('mqtt');
    const c = mqtt.connect(url, { clientId, username: username || undefined, password: password || undefined, reconnectPeriod: 0, connectTimeout: 10_000 });
    client.current = c;
    setState('connecting');
    c.on('connect', () => setState('connected'));
    c.on('close', () => setState('disconnected'));
    c.on('error', (e) => setError(e.message));
    c.on('message', (topic, payload, packet) => {
      const m: Received = { n: ++counter.current, topic, payload: new TextDecoder().decode(payload), qos: packet.qos, retain: packet.retain, at: new Date().toLocaleTimeString() };
      setMsgs((old) => [m, ...old].slice(0, 200));
    });
  };
  const disconnect = (): void => {
    client.current?.end();
    setSubs([]);
  };
  const subscribe = (): void => {
    client.current?.subscribe(sub.topic, { qos: sub.qos as 0 | 1 | 2 }, (err) => (err ? setError(err.message) : setSubs((s) => [...new Set([...s, sub.topic])])));
  };
  const unsubscribe = (t: string): void => {
    client.current?.unsubscribe(t, () => setSubs((s) => s.filter((x) => x !== t)));
  };
  const publish = (): void => {
    client.current?.publish(pub.topic, pub.payload, { qos: pub.qos as 0 | 1 | 2, retain: pub.retain }, (err) => err && setError(err.message));
  };
  const val = (e: Event): string => (e.target as HTMLInputElement).value;
  const on = state === 'connected';
  return (
    <div>
      <Header title="WebSocket client">
        <span class={`badge ${state}`} data-testid="ws-state">
          {state}
        </span>
      </Header>
      <ErrorLine error={error} />
      <div class="card form-grid">
        <label>
          URL <input value={url} onInput={(e) => setUrl(val(e))} size={40} />
        </label>
        <label>
          Client ID <input value={clientId} onInput={(e) => setClientId(val(e))} />
        </label>
        <label>
          Username <input value={username} onInput={(e) => setUsername(val(e))} />
        </label>
        <label>
          Password <input type="password" value={password} onInput={(e) => setPassword(val(e))} />
        </label>
        <div>
          <button onClick={() => void connect().catch((e: Error) => setError(e.message))} disabled={!url || state === 'connecting'}>
            Connect
          </button>{' '}
          <button onClick={disconnect} disabled={!on}>
            Disconnect
          </button>
        </div>
      </div>
      <div class="two">
        <div class="card">
          <h2>Subscribe</h2>
          <input value={sub.topic} onInput={(e) => setSub({ ...sub, topic: val(e) })} />
          <QosSelect value={sub.qos} onChange={(qos) => setSub({ ...sub, qos })} />
          <button onClick={subscribe} disabled={!on}>
            Subscribe
          </button>
          <ul>
            {subs.map((t) => (
              <li key={t}>
                {t} <button onClick={() => unsubscribe(t)}>×</button>
              </li>
            ))}
          </ul>
        </div>
        <div class="card">
          <h2>Publish</h2>
          <input value={pub.topic} onInput={(e) => setPub({ ...pub, topic: val(e) })} />
          <QosSelect value={pub.qos} onChange={(qos) => setPub({ ...pub, qos })} />
          <label>
            <input type="checkbox" checked={pub.retain} onChange={(e) => setPub({ ...pub, retain: (e.target as HTMLInputElement).checked })} /> retain
          </label>
          <textarea rows={3} value={pub.payload} onInput={(e) => setPub({ ...pub, payload: val(e) })} />
          <button onClick={publish} disabled={!on}>
            Publish
          </button>
        </div>
      </div>
      <h2>Received ({msgs.length})</h2>
      <table class="table" data-testid="ws-messages">
        <thead>
          <tr>
            <th>#</th>
            <th>Topic</th>
            <th>QoS</th>
            <th>Retain</th>
            <th>Payload</th>
            <th>At</th>
          </tr>
        </thead>
        <tbody>
          {msgs.map((m) => (
            <tr key={m.n}>
              <td>{m.n}</td>
              <td>{m.topic}</td>
              <td>{m.qos}</td>
              <td>{m.retain ? 'yes' : 'no'}</td>
              <td>
                <code>{m.payload}</code>
              </td>
              <td>{m.at}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
