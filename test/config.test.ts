import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { execa } from 'execa';
import { ConfigError, loadConfig, parseConfig } from '../src/config/load';
import { copyOrderOf, examinationPort, groupOrder } from '../src/config/schema';
import { missingPrograms } from '../src/config/commands';

const ROOT = path.resolve(import.meta.dirname, '..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const minimal = () => ({
  cluster: 'c1',
  operationalDatabase: { name: 'ops' },
  reference: { name: 'teacher', database: { name: 'ref' }, lessonsDir: 'lessons' },
  satellites: [
    { name: 's1', group: 'boys', dataDir: 'sat/s1', url: 'http://127.0.0.1:9001/', webServer: { kind: 'apache', port: 9001, examPort: 9101 } },
    { name: 's2', group: 'girls', dataDir: 'sat/s2', url: 'http://127.0.0.1:9002/', webServer: { kind: 'apache', port: 9002, examPort: 9102 } },
  ],
  loadBalancer: { kind: 'none' },
});

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'bad.yaml', dir);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('the config was accepted');
}

/** The problems of the minimal config with its reference changed, without the file and line. */
function problems(change: (reference: any) => void): string[] {
  const config: any = minimal();
  change(config.reference);
  return problemsOf(stringify(config)).map((p) => p.replace(/^bad\.yaml:\d+: /, ''));
}

describe('config: good files', () => {
  test('the committed local demo loads, with defaults filled in and paths resolved', () => {
    const config = loadConfig(path.join(ROOT, 'config/local-demo.yaml'));
    assert.equal(config.cluster, 'local-demo');
    assert.equal(config.satellites.length, 4);
    assert.deepEqual(groupOrder(config), ['boys', 'girls']);
    assert.equal(config.dataDir, path.join(ROOT, 'data'));
    assert.equal(config.satellites[0]!.dataDir, path.join(ROOT, 'data/satellites/boy-1'));
    assert.equal(config.timings.lastCigarette, 2_000);
    assert.equal(config.temporal.namespace, 'default');
  });

  test('the production example loads', () => {
    const config = loadConfig(path.join(ROOT, 'config/production.example.yaml'));
    assert.notEqual(config.temporal.address, 'embedded');
    assert.notEqual(config.postgres.url, 'embedded');
  });

  test('the library example loads, and every program its reference and satellites run is on this machine', () => {
    const file = path.join(ROOT, 'examples/library/cluster.yaml');
    const config = loadConfig(file);
    assert.deepEqual(
      config.reference.ownSubjects.map((o) => o.name),
      ['library'],
    );
    assert.equal(config.reference.ownSubjects[0]!.check.cwd, path.join(ROOT, 'examples/library'));
    assert.deepEqual(
      config.satellites.map((s) => s.webServer.kind),
      ['own', 'own', 'own', 'own'],
    );
    assert.deepEqual(missingPrograms(config, [{ role: 'all-in-one' }]), []);
  });

  test('the seed timings are the defaults: a 5 minute cigarette and a 10 minute coffee', () => {
    const config = parseConfig(stringify(minimal()), 'min.yaml', dir);
    assert.equal(config.timings.lastCigarette, 5 * 60_000);
    assert.equal(config.timings.coffee, 10 * 60_000);
    assert.equal(config.reference.lessonsDir, path.join(dir, 'lessons'));
  });

  test('JSON is YAML too', () => {
    const config = parseConfig(JSON.stringify(minimal()), 'min.json', dir);
    assert.equal(config.satellites[1]!.group, 'girls');
  });
});

describe('config: bad files get one clear line per problem', () => {
  test('a wrong type names the file, the line and the field', () => {
    const text = stringify(minimal()).replace('port: 9002', 'port: "80x"');
    const problems = problemsOf(text);
    assert.equal(problems.length, 1);
    const line = text.split('\n').findIndex((l) => l.includes('"80x"')) + 1;
    assert.match(
      problems[0]!,
      new RegExp(`^bad\\.yaml:${line}: satellites\\[1\\]\\.webServer\\.port: expected a port number \\(integer\\), found the string "80x"$`),
    );
  });

  test('several problems are all reported, each on its own line', () => {
    const config: any = minimal();
    config.satelites = [];
    delete config.reference.database;
    config.satellites[0].webServer.kind = 'nginx';
    config.timings = { coffee: 'ten minutes' };
    const problems = problemsOf(stringify(config));
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.ok(problems.some((p) => /: \(top level\): unknown field "satelites"/.test(p)));
    assert.ok(problems.some((p) => /reference\.database: is required/.test(p)));
    assert.ok(problems.some((p) => /satellites\[0\]\.webServer\.kind: /.test(p)));
    assert.ok(problems.some((p) => /timings\.coffee: expected a duration such as "250ms"/.test(p)));
  });

  test('duplicate satellite names, shared ports and unknown groups are refused', () => {
    const config: any = minimal();
    config.satellites[1].name = 's1';
    config.satellites[1].webServer.port = 9001;
    config.groups = { order: ['boys', 'ladies'] };
    const problems = problemsOf(stringify(config));
    assert.ok(
      problems.some((p) => /satellites\[1\]\.name: duplicate satellite name "s1"/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) =>
        /satellites\[1\]\.webServer\.port: localhost:9001 is already used by satellites\[0\]\.webServer\.port \(satellite "s1"\)/.test(p),
      ),
    );
    assert.ok(problems.some((p) => /groups\.order\[1\]: group "ladies" has no satellite/.test(p)));
    assert.ok(problems.some((p) => /groups\.order: group "girls" of some satellite is missing/.test(p)));
  });

  test('a value of the wrong type says what was expected and what was found, not "is required"', () => {
    const config: any = minimal();
    config.satellites[0].webServer.port = '80x';
    config.reference.keepLessons = 'five';
    config.timings = { coffee: 10 };
    const text = stringify(config);
    const lineOf = (needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;
    const problems = problemsOf(text);
    assert.deepEqual(
      problems.toSorted(),
      [
        `bad.yaml:${lineOf('80x')}: satellites[0].webServer.port: expected a port number (integer), found the string "80x"`,
        `bad.yaml:${lineOf('five')}: reference.keepLessons: expected an integer, found the string "five"`,
        `bad.yaml:${lineOf('coffee')}: timings.coffee: expected a duration such as "250ms", "30s", "5m" or "1h", found the number 10`,
      ].toSorted(),
    );
  });

  test('a duration without a unit is refused, with an example', () => {
    const config: any = minimal();
    config.timings = { coffee: '60' };
    const problems = problemsOf(stringify(config));
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0]!, /timings\.coffee: "60" has no unit \(ms, s, m, h, d, w or y\); write e\.g\. "60s"/);
  });

  test('a port used twice on one host is refused, naming both fields', () => {
    const clashes = (change: (config: any) => void) => {
      const config: any = minimal();
      change(config);
      return problemsOf(stringify(config));
    };
    // The local demo's shape: every role on this machine, however the host is spelled.
    const haproxy = { kind: 'haproxy', frontendPort: 9001, runtimeApi: 'haproxy/admin.sock' };
    assert.deepEqual(
      clashes((c) => (c.loadBalancer = haproxy)).map((p) => p.replace(/^bad\.yaml:\d+: /, '')),
      ['loadBalancer.frontendPort: localhost:9001 is already used by satellites[0].webServer.port (satellite "s1")'],
    );
    assert.deepEqual(
      clashes((c) => (c.metrics = { bindAddress: '127.0.0.1:9102' })).map((p) => p.replace(/^bad\.yaml:\d+: /, '')),
      ['metrics.bindAddress: localhost:9102 is already used by satellites[1].webServer.examPort (satellite "s2")'],
    );
    assert.deepEqual(
      clashes((c) => {
        c.loadBalancer = { ...haproxy, frontendPort: 9200 };
        c.master = { name: 'master', database: { name: 'm' }, api: { port: 9200 } };
        c.metrics = { bindAddress: '0.0.0.0:9200' };
      }).map((p) => p.replace(/^bad\.yaml:\d+: /, '')),
      [
        'master.api.port: localhost:9200 is already used by loadBalancer.frontendPort',
        'metrics.bindAddress: localhost:9200 is already used by loadBalancer.frontendPort',
        'metrics.bindAddress: localhost:9200 is already used by master.api.port',
      ],
    );
    assert.deepEqual(
      clashes((c) => {
        c.temporal = { embedded: { port: 9300, uiPort: 9300 } };
        c.reference.proofReadPort = 9002;
      }).map((p) => p.replace(/^bad\.yaml:\d+: /, '')),
      [
        'temporal.embedded.uiPort: localhost:9300 is already used by temporal.embedded.port',
        'satellites[1].webServer.port: localhost:9002 is already used by reference.proofReadPort',
      ],
    );
    // Port 0 picks a free port: never a clash.
    const free: any = minimal();
    free.temporal = { embedded: { port: 0, uiPort: 0 } };
    free.postgres = { embedded: { port: 0 } };
    free.metrics = { bindAddress: '127.0.0.1:0' };
    assert.equal(parseConfig(stringify(free), 'free.yaml', dir).reference.proofReadPort, 0);
    // Other hosts, other ports: the same number on two machines is fine.
    const apart: any = minimal();
    apart.satellites[0].host = 'boy-1';
    apart.loadBalancer = { ...haproxy, runtimeApi: 'haproxy:9999' };
    apart.master = { name: 'master', database: { name: 'm' }, api: { host: 'master', port: 9001, plainHttp: 'trusted network' } };
    assert.equal(parseConfig(stringify(apart), 'apart.yaml', dir).satellites[0]!.host, 'boy-1');
  });

  test('values written into generated config files are checked at load, naming the field and the character', () => {
    const config: any = minimal();
    config.dataDir = "../da'ta";
    config.reference.lessonsDir = 'lessons\tfiled';
    config.satellites[0].dataDir = 'sat/s 1';
    config.satellites[1].dataDir = 'sat/s2\nListen 80';
    config.satellites[1].url = 'http://a"b:9002/';
    config.loadBalancer = { kind: 'haproxy', frontendPort: 9000, runtimeApi: 'haproxy/admin#.sock', backend: 'satellites;disable server x/y' };
    const problems = problemsOf(stringify(config)).map((p) => p.replace(/^bad\.yaml:\d+: /, ''));
    assert.deepEqual(problems.toSorted(), [
      'dataDir: must not contain a single quote (it goes into the generated PostgreSQL config)',
      'loadBalancer.backend: expected a name of letters, digits, "_", "." and "-", starting with a letter (it goes into HAProxy runtime API commands), found "satellites;disable server x/y"',
      'loadBalancer.runtimeApi: must not contain the character "#" (it goes into the generated HAProxy config)',
      'reference.lessonsDir: must not contain a tab (it goes into the generated Apache config)',
      'satellites[0].dataDir: must not contain a space (it goes into the generated Apache config)',
      'satellites[1].dataDir: must not contain a newline (it goes into the generated Apache config)',
      'satellites[1].url: expected a host name of letters, digits, ".", "-" and "_", or an IP address (it goes into the generated HAProxy config), found "a\\"b"',
    ]);
  });

  test("a relative path is checked once resolved: the config file's own folder counts", () => {
    const spaced = mkdtempSync(path.join(dir, 'my configs '));
    const problems = (() => {
      try {
        parseConfig(stringify(minimal()), 'spaced.yaml', spaced);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.problems;
      }
      assert.fail('the config was accepted');
    })();
    assert.ok(
      problems.some(
        (p) =>
          p.startsWith(`spaced.yaml:`) &&
          p.includes(
            `satellites[0].dataDir: resolves to "${path.join(spaced, 'sat/s1')}", which contains a space (it goes into the generated Apache config)`,
          ),
      ),
      problems.join('\n'),
    );
  });

  test('a password inside a database URL is refused (secrets come from the environment)', () => {
    const config: any = minimal();
    config.postgres = { url: 'postgres://app:hunter2@db:5432' };
    const problems = problemsOf(stringify(config));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /postgres\.url: must not contain a password/);
    assert.doesNotMatch(problems[0]!, /hunter2/);
  });

  test("the master's API on another host is HTTPS, or plain HTTP only where the config says the network is trusted", () => {
    const withMaster = (api: Record<string, unknown>) => {
      const config: any = minimal();
      config.master = { name: 'master', database: { name: 'm' }, api: { port: 9300, ...api } };
      return stringify(config);
    };
    const plain = problemsOf(withMaster({ host: '10.20.0.5' }));
    assert.equal(plain.length, 1, plain.join('\n'));
    assert.match(plain[0]!, /^bad\.yaml:\d+: master\.api\.tls: /);
    assert.match(plain[0]!, /10\.20\.0\.5 is not this machine/);
    assert.match(plain[0]!, /plainHttp: "trusted network"/);
    // Anything but the words is refused: a boolean flipped by accident does not turn encryption off.
    assert.match(problemsOf(withMaster({ host: '10.20.0.5', plainHttp: true })).join('\n'), /master\.api\.plainHttp: /);
    assert.equal(parseConfig(withMaster({ host: '10.20.0.5', plainHttp: 'trusted network' }), 'ok.yaml', dir).master!.api.tls, undefined);
    // On this machine nothing crosses a network: plain HTTP needs no words.
    assert.equal(parseConfig(withMaster({ host: '127.0.0.1' }), 'ok.yaml', dir).master!.api.host, '127.0.0.1');
    // TLS files are resolved against the config file's folder like every path.
    const tls = parseConfig(
      withMaster({ host: 'master.example', tls: { certFile: 'tls/master.crt', keyFile: 'tls/master.key', caFile: '/etc/ca.crt' } }),
      'ok.yaml',
      dir,
    ).master!.api.tls!;
    assert.deepEqual(tls, { certFile: path.join(dir, 'tls/master.crt'), keyFile: path.join(dir, 'tls/master.key'), caFile: '/etc/ca.crt' });
    assert.match(
      problemsOf(withMaster({ host: 'master.example', plainHttp: 'trusted network', tls: { certFile: 'a.crt', keyFile: 'a.key' } })).join('\n'),
      /master\.api\.plainHttp: .*tls/,
    );
  });

  test("a slave's masterAddress: host:port, and off this machine only over TLS or a network said to be trusted", () => {
    const withSlave = (masterAddress: string, api: Record<string, unknown> = {}) => {
      const config: any = minimal();
      config.master = { name: 'master', database: { name: 'm' }, api: { host: '127.0.0.1', port: 9300, ...api } };
      config.slaves = [{ name: 'far', database: { name: 'f' }, masterAddress }];
      return stringify(config);
    };
    assert.equal(parseConfig(withSlave('127.0.0.1:9400'), 'ok.yaml', dir).slaves[0]!.masterAddress, '127.0.0.1:9400');
    assert.match(problemsOf(withSlave('proxy')).join('\n'), /slaves\[0\]\.masterAddress: expected host:port/);
    const plain = problemsOf(withSlave('10.20.0.9:9300'));
    assert.equal(plain.length, 1, plain.join('\n'));
    assert.match(plain[0]!, /slaves\[0\]\.masterAddress: 10\.20\.0\.9 is not this machine, and without TLS slave far's credential/);
    assert.equal(
      parseConfig(withSlave('10.20.0.9:9300', { plainHttp: 'trusted network' }), 'ok.yaml', dir).slaves[0]!.masterAddress,
      '10.20.0.9:9300',
    );
  });

  test('capacity: more groups kept serving than can be', () => {
    const config: any = minimal();
    config.groups = { minServingGroups: 2 };
    assert.match(problemsOf(stringify(config))[0]!, /groups\.minServingGroups: 2 groups must keep serving, but with 2 groups at most 1/);
  });

  describe('one lesson at a time against the capacity floor', () => {
    /** Four groups of two behind HAProxy: the default floor (all groups but one) is six. */
    const fourGroups = (groups: Record<string, unknown> = {}) => {
      const c: Record<string, any> = minimal();
      c.satellites = ['a', 'b', 'c', 'd'].flatMap((g, gi) =>
        [1, 2].map((n) => {
          const port = 9000 + gi * 10 + n;
          return {
            name: `${g}-${n}`,
            group: g,
            dataDir: `sat/${g}-${n}`,
            url: `http://127.0.0.1:${port}/`,
            webServer: { kind: 'apache', port, examPort: port + 100 },
          };
        }),
      );
      c.loadBalancer = { kind: 'haproxy', frontendPort: 9500, runtimeApi: 'haproxy/admin.sock', backend: 'satellites' };
      c.groups = groups;
      return JSON.stringify(c);
    };

    test('four groups with the default floor are refused, with the two ways out', () => {
      const problems = problemsOf(fourGroups());
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0]!, /groups\.minServingGroups: with groups of 2, 2, 2, 2 satellites, one lesson at a time cannot keep 6 serving/);
      assert.match(problems[0]!, /groups\.minServingGroups: 2 \(4 serve throughout/);
      assert.match(problems[0]!, /groups\.consistency: capacity-first/);
    });

    test('a floor the switch can keep, or capacity first, loads', () => {
      assert.equal(parseConfig(fourGroups({ minServingGroups: 2 }), 'ok.yaml', dir).groups.consistency, undefined);
      assert.equal(parseConfig(fourGroups({ consistency: 'capacity-first' }), 'ok.yaml', dir).groups.consistency, 'capacity-first');
    });

    test('one lesson chosen without the load balancer under control is refused', () => {
      const c: Record<string, any> = minimal();
      c.groups = { consistency: 'one-lesson' };
      const problems = problemsOf(JSON.stringify(c));
      assert.match(problems.join('\n'), /groups\.consistency: one lesson at a time needs the load balancer under control/);
    });
  });

  test('broken YAML names the line', () => {
    const problems = problemsOf('cluster: c1\nsatellites: [\n  - name: x\n');
    assert.ok(problems.length >= 1);
    for (const problem of problems) assert.match(problem, /^bad\.yaml:[234]: /);
  });

  test('a missing file says so', () => {
    assert.throws(
      () => loadConfig(path.join(dir, 'nope.yaml')),
      (err: unknown) => err instanceof ConfigError && /cannot read the file: ENOENT/.test(err.problems[0]!),
    );
  });

  test("subjects of the cluster's own: commands resolved against the config's folder, with their time limits", () => {
    const config: any = minimal();
    config.reference.servedDir = 'served';
    config.reference.subjects = [
      {
        name: 'library',
        check: ['python3', 'scripts/check.py'],
        prepare: [{ command: ['./scripts/update.sh', '--all'], timeout: '30m' }],
        proofRead: { queries: ['/index/catalogue.json'] },
        owns: ['db/', 'index/'],
      },
      { name: 'maps', check: ['true'], prepare: [['make', 'tiles']], owns: ['tiles/'] },
    ];
    config.reference.snapshot = { before: ['sqlite3', 'db/library.sqlite', 'PRAGMA wal_checkpoint(TRUNCATE)'] };
    const loaded = parseConfig(stringify(config), 'own.yaml', dir).reference;
    assert.deepEqual(loaded.subjects, ['library', 'maps']);
    assert.equal(loaded.servedDir, path.join(dir, 'served'));
    const [library, maps] = loaded.ownSubjects;
    assert.deepEqual(library!.check, { command: ['python3', 'scripts/check.py'], timeout: 10 * 60_000, cwd: dir });
    assert.deepEqual(library!.prepare[0], { command: [path.join(dir, 'scripts/update.sh'), '--all'], timeout: 30 * 60_000, cwd: dir });
    assert.deepEqual(library!.proofRead, { commands: [], queries: ['/index/catalogue.json'] });
    assert.deepEqual(maps!.prepare, [{ command: ['make', 'tiles'], timeout: 10 * 60_000, cwd: dir }]);
    assert.equal(loaded.snapshot!.before!.cwd, dir);
  });

  test("subjects of the cluster's own: mixed with the catalog, without servedDir, owning one path twice, or badly timed are refused", () => {
    const own = (name: string, owns: string[]) => ({ name, check: ['true'], prepare: [['true']], owns });
    assert.deepEqual(
      problems((r) => {
        r.subjects = ['records', own('library', ['db/'])];
      }),
      [
        'reference.subjects[0]: "records" is a subject of the built-in catalog, and "library" the cluster\'s own: a cluster\'s lessons are made one way or the other, so give every subject its commands, or none',
        "reference.servedDir: subjects of the cluster's own work in the folder that holds what the satellites serve: name it (e.g. servedDir: /srv/app/data)",
      ],
    );
    assert.deepEqual(
      problems((r) => {
        r.servedDir = 'served';
        r.subjects = [own('library', ['db/', 'index/']), own('search', ['index/books/'])];
      }),
      ['reference.subjects[1].owns[0]: "index/books/" overlaps "index/", owned by subject "library": no two subjects may write the same file'],
    );
    const timed = problems((r) => {
      r.servedDir = 'served';
      r.subjects = [
        {
          name: 'library',
          check: { command: ['true'], timeout: '2d' },
          prepare: [{ command: ['true'], timeout: '90' }],
          proofRead: { queries: ['index.html'] },
        },
      ];
    });
    assert.equal(timed.length, 3, timed.join('\n'));
    assert.match(timed.join('\n'), /reference\.subjects\[0\]\.check\.timeout: expected at most 24h/);
    assert.match(timed.join('\n'), /reference\.subjects\[0\]\.prepare\[0\]\.timeout: "90" has no unit/);
    assert.match(timed.join('\n'), /reference\.subjects\[0\]\.proofRead\.queries\[0\]: expected a URL path starting with "\/"/);
    assert.match(
      problems((r) => {
        r.servedDir = 'served';
        r.subjects = [{ name: 'library', check: 'python3 check.py', prepare: [['true']] }];
      }).join('\n'),
      /reference\.subjects\[0\]\.check: expected a command as an argument array/,
    );
  });

  test("the reference's own web server: only for subjects of the cluster's own, and each service needs a stop command", () => {
    const service = { name: 'app', start: ['true'], stop: ['true'] };
    assert.deepEqual(
      problems((r) => {
        r.webServer = { kind: 'own', port: 18999, services: [service] };
      }),
      [
        "reference.webServer: the reference's own web server proof-reads subjects of the cluster's own; the built-in catalog is proof-read on lessonplan's Apache: remove it, or give the subjects their commands",
      ],
    );
    assert.deepEqual(
      problems((r) => {
        r.servedDir = 'served';
        r.subjects = [{ name: 'library', check: ['true'], prepare: [['true']] }];
        r.webServer = { kind: 'own', port: 18999, services: [{ name: 'app', start: ['true'] }] };
      }),
      ['reference.webServer.services[0].stop: is required (expected a command as an argument array, or { command: [...], timeout: "10m" })'],
    );
    // A program named by a relative path is found from the config's folder, and runs there.
    const config: any = minimal();
    config.reference.servedDir = 'served';
    config.reference.subjects = [{ name: 'library', check: ['true'], prepare: [['true']] }];
    config.reference.webServer = { kind: 'own', port: 18999, services: [{ name: 'app', start: ['./app.sh', 'start'], stop: ['app.sh', 'stop'] }] };
    const loaded = parseConfig(stringify(config), 'own.yaml', dir).reference.webServer!;
    assert.deepEqual(loaded.services[0]!.start, { command: [path.join(dir, 'app.sh'), 'start'], timeout: 10 * 60_000, cwd: dir });
    assert.deepEqual(loaded.services[0]!.stop, { command: ['app.sh', 'stop'], timeout: 10 * 60_000, cwd: dir });
  });

  test('a worker refuses to start when a command of its role names a program this machine does not have, naming the field', async () => {
    const config: any = minimal();
    config.reference.servedDir = 'served';
    config.reference.subjects = [
      { name: 'library', check: ['python3', '-c', 'pass'], prepare: [['./scripts/no-such-update.sh'], ['no-such-indexer-xyz']] },
    ];
    const file = path.join(dir, 'own-missing.yaml');
    writeFileSync(file, stringify(config));
    // Any other process reads the config as it is: the reference's programs need not be on an operator's machine.
    const plain = await execa('node', [path.join(ROOT, 'bin/lessonplan.js'), 'config', file], { reject: false });
    assert.equal(plain.exitCode, 0, plain.stderr);
    for (const args of [
      ['config', file, '--role', 'reference'],
      ['--config', file, 'worker', 'reference'],
    ]) {
      const result = await execa('node', [path.join(ROOT, 'bin/lessonplan.js'), ...args], { reject: false });
      assert.equal(result.exitCode, 2, `${args.join(' ')}: ${result.stderr}`);
      const lines = result.stderr.trim().split('\n');
      assert.deepEqual(lines, [
        `error: ${path.relative(process.cwd(), file)}: reference.subjects[0].prepare[0]: "${path.join(dir, 'scripts/no-such-update.sh')}" is not a program on this machine (no executable file there)`,
        `error: ${path.relative(process.cwd(), file)}: reference.subjects[0].prepare[1]: "no-such-indexer-xyz" is not a program on this machine (not found in PATH)`,
      ]);
    }
  });

  test("a satellite's own services: a service without a stop command is refused at load, naming the field; paths resolved", () => {
    const config: any = minimal();
    const own = (services: unknown[]) => ({ kind: 'own', port: 9001, lessonLink: 'srv/current', services });
    config.satellites[0].webServer = own([{ name: 'app', start: ['./app.sh', 'start'], isUp: ['./app.sh', 'status'] }]);
    assert.deepEqual(
      problemsOf(stringify(config)).map((p) => p.replace(/^bad\.yaml:\d+: /, '')),
      ['satellites[0].webServer.services[0].stop: is required (expected a command as an argument array, or { command: [...], timeout: "10m" })'],
    );
    config.satellites[0].webServer = own([{ name: 'app', start: ['./app.sh', 'start'], stop: ['./app.sh', 'stop'] }]);
    const loaded = parseConfig(stringify(config), 'own.yaml', dir).satellites[0]!.webServer;
    assert.equal(loaded.kind, 'own');
    if (loaded.kind !== 'own') return;
    assert.equal(loaded.lessonLink, path.join(dir, 'srv/current'));
    assert.deepEqual(loaded.services[0]!.stop, { command: [path.join(dir, 'app.sh'), 'stop'], timeout: 10 * 60_000, cwd: dir });
  });

  test('copy while serving: the default with Apache satellites; with services of their own, out of service, and while-serving refused naming the satellite', () => {
    const config: any = minimal();
    assert.equal(copyOrderOf(parseConfig(stringify(config), 'apache.yaml', dir)), 'while-serving');
    config.groups = { copy: 'out-of-service', copiesAtOnce: 2 };
    const chosen = parseConfig(stringify(config), 'seed.yaml', dir);
    assert.equal(copyOrderOf(chosen), 'out-of-service');
    assert.equal(chosen.groups.copiesAtOnce, 2);
    config.groups = {};
    config.satellites[0].webServer = {
      kind: 'own',
      port: 9001,
      lessonLink: 'srv/current',
      services: [{ name: 'app', start: ['true'], stop: ['true'] }],
    };
    assert.equal(copyOrderOf(parseConfig(stringify(config), 'own.yaml', dir)), 'out-of-service');
    config.groups = { copy: 'while-serving' };
    const problems = problemsOf(stringify(config)).map((p) => p.replace(/^bad\.yaml:\d+: /, ''));
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(
      problems[0]!,
      /^groups\.copy: satellite "\S+" runs services of its own with no examination instance, .* or use groups\.copy: out-of-service$/,
    );
    config.groups = { copiesAtOnce: 0 };
    assert.match(problemsOf(stringify(config)).join('\n'), /groups\.copiesAtOnce/);
  });

  test('services of their own with an examination instance copy while serving by default; its link is resolved and its port checked', () => {
    const config: any = minimal();
    config.satellites[0].webServer = {
      kind: 'own',
      port: 9001,
      lessonLink: 'srv/current',
      services: [{ name: 'app', start: ['true'], stop: ['true'] }],
      examination: { port: 9101, lessonLink: 'srv/exam' },
    };
    const loaded = parseConfig(stringify(config), 'own.yaml', dir);
    assert.equal(copyOrderOf(loaded), 'while-serving');
    const web = loaded.satellites[0]!.webServer;
    assert.ok(web.kind === 'own' && web.examination);
    assert.equal(web.examination.lessonLink, path.join(dir, 'srv/exam'));
    assert.equal(examinationPort(loaded.satellites[0]!), 9101);
    // Its own commands, when given, are resolved like the services'.
    config.satellites[0].webServer.examination.services = [{ name: 'app', start: ['./app.sh', 'start'], stop: ['./app.sh', 'stop'] }];
    const withCommands = parseConfig(stringify(config), 'own.yaml', dir).satellites[0]!.webServer;
    assert.ok(withCommands.kind === 'own');
    assert.deepEqual(withCommands.examination?.services?.[0]!.start.command, [path.join(dir, 'app.sh'), 'start']);
    config.satellites[0].webServer.examination = { port: 'x', lessonLink: '' };
    const problems = problemsOf(stringify(config)).join('\n');
    assert.match(problems, /satellites\[0\]\.webServer\.examination\.port/);
    assert.match(problems, /satellites\[0\]\.webServer\.examination\.lessonLink/);
  });

  test('the CLI prints one line per problem and exits 2', async () => {
    const config: any = minimal();
    config.satellites[0].url = 'not a url';
    config.loadBalancer = { kind: 'haproxy' };
    const file = path.join(dir, 'broken.yaml');
    writeFileSync(file, stringify(config));
    const result = await execa('node', [path.join(ROOT, 'bin/lessonplan.js'), 'config', file], { reject: false });
    assert.equal(result.exitCode, 2);
    const lines = result.stderr.trim().split('\n');
    assert.ok(lines.length >= 3, result.stderr);
    for (const line of lines) assert.match(line, /^error: .*broken\.yaml:\d+: \S+: /);
    assert.ok(lines.some((l) => l.includes('satellites[0].url')));
    assert.ok(lines.some((l) => l.includes('loadBalancer.frontendPort')));
  });
});
