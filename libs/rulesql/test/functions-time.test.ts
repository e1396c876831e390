import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { call, fails } from './functions-util';

// RFC 3339 output uses the host's offset, as EMQX does: pin it (and restore it after).
const savedTz = process.env.TZ;
before(() => {
  process.env.TZ = 'Asia/Shanghai';
});
after(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

const UNITS = ['second', 'millisecond', 'microsecond', 'nanosecond'] as const;

describe('RFC 3339 functions', () => {
  it('unix_ts_to_rfc3339 shows the host offset and as many fraction digits as the unit has', () => {
    assert.equal(call('unix_ts_to_rfc3339', 1708671600), '2024-02-23T15:00:00+08:00');
    assert.equal(call('unix_ts_to_rfc3339', 1708671600766, 'millisecond'), '2024-02-23T15:00:00.766+08:00');
    assert.equal(call('unix_ts_to_rfc3339', 1708671600000766, 'microsecond'), '2024-02-23T15:00:00.000766+08:00');
    process.env.TZ = 'UTC';
    try {
      assert.equal(call('unix_ts_to_rfc3339', 0), '1970-01-01T00:00:00+00:00');
    } finally {
      process.env.TZ = 'Asia/Shanghai';
    }
    fails(() => call('unix_ts_to_rfc3339', 1.5));
    fails(() => call('unix_ts_to_rfc3339', 1, 'hour'));
  });

  it('rfc3339_to_unix_ts reads Z and offsets, in any unit (fractions past it dropped)', () => {
    assert.equal(call('rfc3339_to_unix_ts', '2024-02-23T15:56:30Z'), 1708703790);
    assert.equal(call('rfc3339_to_unix_ts', '2024-02-23T15:56:30+08:00'), 1708674990);
    assert.equal(call('rfc3339_to_unix_ts', '2024-02-23T15:56:30.87Z', 'second'), 1708703790);
    assert.equal(call('rfc3339_to_unix_ts', '2024-02-23T15:56:30.87Z', 'millisecond'), 1708703790870);
    assert.equal(call('rfc3339_to_unix_ts', '2024-02-23T15:56:30.87Z', 'microsecond'), 1708703790870000);
    // Nanoseconds since 1970 pass 2^53: the number is the nearest double (1708703790535904509 in EMQX).
    assert.equal(call('rfc3339_to_unix_ts', '2024-02-23T15:56:30.535904509Z', 'nanosecond'), 1708703790535904509);
    assert.equal(call('rfc3339_to_unix_ts', '2024-02-23 15:56:30z'), 1708703790);
    fails(() => call('rfc3339_to_unix_ts', '2024-02-30T00:00:00Z'));
    fails(() => call('rfc3339_to_unix_ts', '2024-02-23T15:56:30'));
  });

  it('round-trip through each unit', () => {
    for (const u of UNITS) {
      const t = call('now_timestamp', u) as number;
      assert.ok(Number.isInteger(t));
      const back = call('rfc3339_to_unix_ts', call('unix_ts_to_rfc3339', t, u), u);
      if (u === 'nanosecond') assert.ok(Math.abs((back as number) - t) < 1024);
      else assert.equal(back, t);
    }
  });

  it('now_rfc3339 and now_timestamp are the current time', () => {
    const before = Date.now();
    const s = call('now_timestamp') as number;
    const ms = call('now_timestamp', 'millisecond') as number;
    const us = call('now_timestamp', 'microsecond') as number;
    const after = Date.now();
    assert.ok(s >= Math.floor(before / 1000) && s <= Math.ceil(after / 1000));
    assert.ok(ms >= before && ms <= after);
    assert.ok(us >= before * 1000 - 1000 && us <= after * 1000 + 1000);
    assert.match(call('now_rfc3339') as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
    assert.match(call('now_rfc3339', 'microsecond') as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+08:00$/);
    const parsed = call('rfc3339_to_unix_ts', call('now_rfc3339', 'millisecond'), 'millisecond') as number;
    assert.ok(Math.abs(parsed - Date.now()) < 5000);
  });
});

describe('format_date and date_to_unix_ts', () => {
  it("format_date's directives and offsets (EMQX's examples)", () => {
    const t = 1708933353472;
    assert.equal(call('format_date', 'millisecond', '+08:00', '%Y-%m-%d %H:%M:%S.%6N%z', t), '2024-02-26 15:42:33.472000+0800');
    assert.equal(call('format_date', 'millisecond', '+08:00', '%Y-%m-%d %H:%M:%S.%6N%:z', t), '2024-02-26 15:42:33.472000+08:00');
    assert.equal(call('format_date', 'millisecond', '+08:20:30', '%Y-%m-%d %H:%M:%S.%3N%::z', t), '2024-02-26 16:03:03.472+08:20:30');
    assert.equal(call('format_date', 'millisecond', 'Z', '%Y-%m-%d %H:%M:%S.%3N%:z', t), '2024-02-26 07:42:33.472+00:00');
    assert.equal(call('format_date', 'millisecond', 28800, '%Y-%m-%d %H:%M:%S.%3N%:z', t), '2024-02-26 15:42:33.472+08:00');
    assert.equal(call('format_date', 'second', '-05:30', '%d/%m/%Y %N', 1708933353), '26/02/2024 000000000');
    assert.equal(call('format_date', 'nanosecond', '+0000', '%H:%M:%S.%N', 1708933353472123904), '07:42:33.472123904');
    assert.equal(call('format_date', 'second', 'Z', '100%% %Y', 0), '100%% 1970');
    assert.match(call('format_date', 'second', 'Z', '%Y-%m-%d') as string, /^\d{4}-\d\d-\d\d$/);
    fails(() => call('format_date', 'second', '+8', '%Y', 0));
    fails(() => call('format_date', 'second', 'nowhere', '%Y', 0));
  });

  it("date_to_unix_ts reads by position (EMQX's examples and compatibility cases)", () => {
    assert.equal(call('date_to_unix_ts', 'second', '%Y-%m-%d %H:%M:%S%:z', '2024-02-23 15:00:00+08:00'), 1708671600);
    assert.equal(call('date_to_unix_ts', 'second', '+08:00', '%Y-%m-%d %H:%M:%S%:z', '2024-02-23 15:00:00'), 1708671600);
    assert.equal(call('date_to_unix_ts', 'second', 'Z', '%Y-%m-%d %H:%M:%S%:z', '2024-02-23 07:00:00'), 1708671600);
    assert.equal(call('date_to_unix_ts', 'second', 14400, '%Y-%m-%d %H:%M:%S%:z', '2024-02-23 15:00:00'), 1708686000);
    assert.equal(call('date_to_unix_ts', 'second', '%Y-%m-%d %H:%M:%S', '2022-05-26 10:40:12'), 1653561612);
    assert.equal(call('date_to_unix_ts', 'second', '%Y-%m-%d %H-%M-%S', '2022-05-26 10:40:12'), 1653561612);
    assert.equal(call('date_to_unix_ts', 'second', '%Y-%m-%d %H:%M:%S', '2022-05-26 10-40-12'), 1653561612);
    assert.equal(call('date_to_unix_ts', 'second', '%Y-%m-%d %H:%M:%S', '2024-02-29 14:31:40'), 1709217100);
    assert.equal(call('date_to_unix_ts', 'second', '%Y-%m-%d %H:%M:%S', '2100-03-01 12:44:31'), 4107588271);
    assert.equal(call('date_to_unix_ts', 'second', '+08:00', '%Y-%m-%d %H:%M:%S', '2024-02-29 14:31:40'), 1709188300);
    assert.equal(call('date_to_unix_ts', 'second', '+08:00', '%Y-%m-%d %H:%M:%S', '2100-03-01 12:44:31'), 4107559471);
    assert.equal(call('date_to_unix_ts', 'second', '%Y-%m-%d %H:%M:%S.%3N%:z', '2024-02-23 15:00:00.123+08:00'), 1708671600);
    assert.equal(call('date_to_unix_ts', 'millisecond', '+08:00', '%Y-%m-%d %H-%M-%S.%3N', '2024-03-01 10:30:38.333'), 1709260238333);
    assert.equal(call('date_to_unix_ts', 'microsecond', '+08:00', '%Y-%m-%d %H-%M-%S.%3N', '2024-03-01 10:30:38.333'), 1709260238333000);
    assert.equal(call('date_to_unix_ts', 'microsecond', '+08:00', '%Y-%m-%d %H-%M-%S.%6N', '2024-03-01 10:30:38.333444'), 1709260238333444);
    assert.equal(call('date_to_unix_ts', 'second', '+08:00', '%Y-%m-%d %H-%M-%S.%3N', '2024-03-01 10:30:38.333'), 1709260238);
  });

  it('date_to_unix_ts errors: bad numbers, missing parts, impossible dates', () => {
    fails(() => call('date_to_unix_ts', 'second', '%Y-%m-%d %H:%M:%S', '2022-059999-26 10:40:12'));
    fails(() => call('date_to_unix_ts', 'second', '%y-%m-%d %H:%M:%S', '2022-05-26 10:40:12'));
    fails(() => call('date_to_unix_ts', 'second', '%Y-%d %H:%M:%S', '2022-32 10:40:12'));
    fails(() => call('date_to_unix_ts', 'second', '%H:%M:%S', '10:40:12'));
    fails(() => call('date_to_unix_ts', 'second', '%Y-%m-%d %H:%M:%S', '2022-05-32 10:40:12'));
    fails(() => call('date_to_unix_ts', 'second', '%Y-%m-%d %H:%M:%S', '2023-02-29 10:40:12'));
    fails(() => call('date_to_unix_ts', 'second', '%Y-%m-%d %H:%M:%S', '2024-02-30 10:40:12'));
  });

  it('format_date and date_to_unix_ts invert each other', () => {
    const cases: [string, string, string, number][] = [
      ['second', '+07:00', '%m--%d--%Y---%H:%M:%S%z', 1708933353],
      ['millisecond', '+04:00', '--%m--%d--%Y---%H:%M:%S:%3N%z', 1708933353472],
      ['second', '+08:00', '%Y-%m-%d-%H:%M:%S%z', 1],
    ];
    for (const [u, off, fmt, t] of cases) assert.equal(call('date_to_unix_ts', u, fmt, call('format_date', u, off, fmt, t)), t);
    // No offset in the format: date_to_unix_ts/4 is given it.
    const s = call('format_date', 'second', '+04:00', '--%m--%d--%Y---%H:%M:%S', 1708933353);
    assert.equal(call('date_to_unix_ts', 'second', '+04:00', '--%m--%d--%Y---%H:%M:%S', s), 1708933353);
  });

  it('timezone_to_offset_seconds (and its 4.x name timezone_to_second)', () => {
    for (const f of ['timezone_to_offset_seconds', 'timezone_to_second']) {
      assert.equal(call(f, '+02:00:00'), 7200);
      assert.equal(call(f, '-02:00:00'), -7200);
      assert.equal(call(f, '+00:01:42'), 102);
      assert.equal(call(f, '+08:00'), 28800);
      assert.equal(call(f, '+0530'), 19800);
      assert.equal(call(f, 'z'), 0);
      assert.equal(call(f, 'Z'), 0);
      assert.equal(call(f, 42), 42);
      assert.equal(call(f, undefined), 0);
      assert.equal(call(f, 'local'), 28800);
      fails(() => call(f, '+24:00'));
      fails(() => call(f, '08:00'));
    }
  });

  it('mongo_date is the ISODate form EMQX shows in rule tests (UTC, milliseconds)', () => {
    assert.equal(call('mongo_date', 1708703337871), 'ISODate(2024-02-23T15:48:57.871Z)');
    assert.equal(call('mongo_date', 1708703337871123, 'microsecond'), 'ISODate(2024-02-23T15:48:57.871Z)');
    assert.equal(call('mongo_date', 1708703337, 'second'), 'ISODate(2024-02-23T15:48:57.000Z)');
    assert.match(call('mongo_date') as string, /^ISODate\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\)$/);
  });
});
