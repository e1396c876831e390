import { all, call } from './ctl-http';
import { type CtlGroup, localRfc3339, need, unknown } from './ctl-ops';

/**
 * `tributary ctl rules list | show <RuleID>`: EMQX 5's `emqx ctl rules` output, over the rule
 * API (GET /rules, GET /rules/:id). Rules are managed through the API or the dashboard.
 */

/** A rule as GET /rules shows it (the fields the CLI prints). */
export interface ApiRule {
  id: string;
  name: string;
  sql: string;
  enable: boolean;
  description: string;
  actions: (string | { function: string; args?: Record<string, unknown> })[];
  created_at: string;
  updated_at: string;
}

/** EMQX's `Rule{id=..., name=..., enabled=..., descr=...}` line of `rules list`. */
export function ruleLine(r: ApiRule): string {
  return `Rule{id=${r.id}, name=${r.name}, enabled=${String(r.enable)}, descr=${r.description}}\n`;
}

/** Text continued on the next lines is indented like its first line. */
const pad = (s: string): string => s.replace(/\n/g, '\n  ');

/** One action of `rules show`: a function (republish, console) with its args as JSON, or a sink `<type>:<name>`. */
function actionText(a: ApiRule['actions'][number]): string {
  if (typeof a === 'string') {
    const i = a.indexOf(':');
    return i < 0 ? `- Name:  ${a}\n  Type:  data-bridge\n` : `- Name:         ${a.slice(i + 1)}\n  Action Type:  ${a.slice(0, i)}\n  Type:         data-bridge\n`;
  }
  return `- Name:  ${a.function}\n  Type:  function\n  Args:  ${JSON.stringify(a.args ?? {})}\n`;
}

/** EMQX's labelled blocks of `rules show`: Id, Name, Description, Enabled, SQL, Created at, Updated at (local RFC 3339, ms), Actions. */
export function ruleBlock(r: ApiRule): string {
  const at = (t: string): string => localRfc3339(new Date(t), true);
  return (
    `Id:\n  ${r.id}\n` +
    `Name:\n  ${r.name}\n` +
    `Description:\n  ${pad(r.description)}\n` +
    `Enabled:\n  ${String(r.enable)}\n` +
    `SQL:\n  ${pad(r.sql)}\n` +
    `Created at:\n  ${at(r.created_at)}\n` +
    `Updated at:\n  ${at(r.updated_at)}\n` +
    `Actions:\n  ${r.actions.map((a) => pad(actionText(a))).join('')}\n`
  );
}

/** The `rules` command group. */
export const rules: CtlGroup = {
  usage: [
    ['rules list', 'List rules'],
    ['rules show <RuleID>', 'Show a rule'],
  ],
  async run(t, [sub, id]) {
    if (sub === 'list') return (await all<ApiRule>(t, '/rules')).map(ruleLine).join('');
    if (sub === 'show') return ruleBlock((await call(t, 'GET', `/rules/${encodeURIComponent(need(id, 'rules show <RuleID>'))}`)) as ApiRule);
    return unknown('rules', [sub ?? '']);
  },
};
