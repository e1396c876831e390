/**
 * acl.conf text with `n` rules of the kinds a large installation has: one per device user
 * (`{allow, {username, "user-<i>"}, publish, ["bulk/<i>/#"]}`), every tenth one a client-id
 * regex, every hundredth a CIDR, so matching walks every Who form. A request no rule matches
 * goes through all of them. Used by the file-source tests and the bench.
 */
export function aclRuleFile(n: number): string {
  const lines = [`%% ${n} generated rules`];
  for (let i = 0; i < n; i++) {
    if (i % 100 === 99) lines.push(`{deny, {ipaddr, "10.${i % 256}.0.0/16"}, all, ["bulk/${i}/#"]}.`);
    else if (i % 10 === 9) lines.push(`{allow, {clientid, {re, "^dev-${i}-[0-9]+$"}}, subscribe, ["bulk/${i}/+", {eq, "bulk/${i}/#"}]}.`);
    else lines.push(`{allow, {username, "user-${i}"}, {publish, [{qos, [0, 1]}]}, ["bulk/${i}/#", "bulk/\${clientid}/${i}"]}.`);
  }
  return `${lines.join('\n')}\n`;
}
