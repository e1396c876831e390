import { render, type JSX } from 'preact';
import { useEffect } from 'preact/hooks';
import { currentUser, logout, setUnauthorizedHandler, token } from './api';
import { AclPage } from './pages/acl';
import { BannedPage } from './pages/banned';
import { ClientDetailPage, ClientsPage } from './pages/clients';
import { ListenersPage } from './pages/listeners';
import { LoginPage } from './pages/login';
import { OverviewPage } from './pages/overview';
import { SubscriptionsPage } from './pages/subscriptions';
import { RetainedPage, TopicsPage } from './pages/topics';
import { RulesPage } from './pages/rules';
import { SinksPage } from './pages/sinks';
import { UsersPage } from './pages/users';
import { WebSocketPage } from './pages/websocket';
import { navigate, onLink, usePath } from './router';
import './style.css';

const NAV: { path: string; title: string; group?: string }[] = [
  { path: '/', title: 'Overview', group: 'Monitoring' },
  { path: '/clients', title: 'Clients' },
  { path: '/subscriptions', title: 'Subscriptions' },
  { path: '/topics', title: 'Topics' },
  { path: '/retained', title: 'Retained' },
  { path: '/listeners', title: 'Listeners', group: 'Management' },
  { path: '/websocket', title: 'WebSocket client' },
  { path: '/integration/rules', title: 'Rules', group: 'Integration' },
  { path: '/integration/sinks', title: 'Sinks' },
  { path: '/access/users', title: 'Users', group: 'Access control' },
  { path: '/access/rules', title: 'Authorization rules' },
  { path: '/access/banned', title: 'Banned' },
];

const PAGES: Record<string, () => JSX.Element> = {
  '/': () => <OverviewPage />,
  '/clients': () => <ClientsPage />,
  '/subscriptions': () => <SubscriptionsPage />,
  '/topics': () => <TopicsPage />,
  '/retained': () => <RetainedPage />,
  '/listeners': () => <ListenersPage />,
  '/websocket': () => <WebSocketPage />,
  '/integration/rules': () => <RulesPage />,
  '/integration/sinks': () => <SinksPage />,
  '/access/users': () => <UsersPage />,
  '/access/rules': () => <AclPage />,
  '/access/banned': () => <BannedPage />,
};

/** The page for a path (client ids are one percent-encoded segment). */
function page(path: string) {
  const detail = /^\/clients\/([^/]+)$/.exec(path);
  if (detail) return <ClientDetailPage clientid={decodeURIComponent(detail[1]!)} />;
  const known = PAGES[path];
  if (known) return known();
  return (
    <p>
      No page at {path}. <a href="/" onClick={onLink}>Overview</a>
    </p>
  );
}

function toLogin(): void {
  if (location.pathname !== '/login') navigate(`/login?next=${encodeURIComponent(location.pathname)}`, true);
}

/** The app: the login page without a token, else the navigation and the current page. */
function App() {
  const path = usePath();
  const authed = token() !== null;
  useEffect(() => {
    if (!authed && path !== '/login') toLogin();
  }, [authed, path]);
  if (path === '/login' || !authed) return <LoginPage />;
  const active = (p: string): boolean => (p === '/' ? path === '/' : path === p || path.startsWith(`${p}/`));
  return (
    <div class="layout">
      <nav class="side">
        <div class="brand">Tributary</div>
        {NAV.map((n) => (
          <div key={n.path}>
            {n.group ? <div class="group">{n.group}</div> : null}
            <a href={n.path} onClick={onLink} class={active(n.path) ? 'active' : ''}>
              {n.title}
            </a>
          </div>
        ))}
        <div class="who">
          {currentUser()}{' '}
          <button onClick={() => void logout().then(() => navigate('/login'))} class="link">
            log out
          </button>
        </div>
      </nav>
      <main>{page(path)}</main>
    </div>
  );
}

setUnauthorizedHandler(toLogin);
render(<App />, document.getElementById('app')!);
