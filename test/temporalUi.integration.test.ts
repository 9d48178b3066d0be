/**
 * The operator's way through the real Temporal UI (the dev server's, in Debian's headless
 * Chromium driven by playwright-core): a rollout halts on a broken satellite, the
 * operator lists halted rollouts with the search attributes the workflows set, opens the
 * one of this cluster, sends `resume` from the UI's own signal action after the fix, and
 * the rollout completes. Screenshots are kept in test-artifacts/ for a person to look at.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startPrepareLesson } from '../src/operator/prepare';
import { temporalEndpoint } from '../src/stack/endpoints';
import { drop, preparationTestBed, servedVersions, smallSample } from './helpers/preparation';
import { onTeardown } from './helpers/stack';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '../test-artifacts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the Temporal UI: find the halted rollout, resume it with a signal', async () => {
  let marker = '';
  // girl-1's examination fails while the marker exists; everything else passes.
  const { config, client, ops } = await preparationTestBed('ui', (raw) => {
    marker = path.join(path.dirname(path.dirname(raw.reference.lessonsDir)), 'girl-1-broken');
    const girl1 = raw.satellites.find((s: { name: string }) => s.name === 'girl-1');
    raw.reference.testCommand = [
      'node',
      '-e',
      `const broken = require('node:fs').existsSync(${JSON.stringify(marker)}) && process.env.LESSON_URL.includes(':${girl1.webServer.examPort}');
       if (broken) { console.error('girl-1: search index corrupt'); process.exit(3); }`,
    ];
  });
  const uiUrl = temporalEndpoint(config).uiUrl;
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    // No sandbox as root in CI; nothing that reaches for the network beyond the UI.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  onTeardown(() => browser.close());

  test('a saved filter lists the halted rollout; the UI sends resume; the rollout completes', { timeout: 240_000 }, async () => {
    assert.ok(uiUrl, 'the embedded stack serves the Temporal UI');
    await drop(ops, smallSample(config, 60, 20));
    writeFileSync(marker, 'broken');
    const preparation = await startPrepareLesson(client, config, 'ui test');

    // Temporal's own list, with the filter an operator saves in the UI.
    const filter = `LessonHalted = true AND LessonplanCluster = "${config.cluster}"`;
    let rolloutId: string | undefined;
    for (const deadline = Date.now() + 150_000; !rolloutId; await sleep(500)) {
      assert.ok(Date.now() < deadline, 'the rollout halted');
      for await (const w of client.workflow.list({ query: filter })) if (w.type === 'holdLesson') rolloutId = w.workflowId;
    }
    rmSync(marker); // the operator's fix

    const page: Page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(30_000);
    const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `temporal-ui-${name}.png`), fullPage: true });
    try {
      await page.goto(`${uiUrl}/namespaces/${config.temporal.namespace}/workflows?query=${encodeURIComponent(filter)}`);
      const row = page.getByRole('link', { name: rolloutId, exact: true }).first();
      await row.waitFor();
      await shot('1-halted-rollouts');
      await row.click();

      await page.getByRole('heading', { name: rolloutId }).waitFor();
      await page.getByRole('button', { name: 'More Actions' }).click();
      await page.getByRole('menuitem', { name: /Send a Signal/ }).click();
      const dialog = page.getByRole('dialog').filter({ hasText: 'Send a Signal' });
      // The UI asks the running worker for the workflow's signals and offers them in a list.
      await dialog.getByTestId('signal-select-button').click();
      const option = (name: string) => dialog.getByRole('option').filter({ hasText: new RegExp(`^\\s*${name}\\b`) });
      await option('resume').waitFor();
      for (const signal of ['abort', 'pause']) assert.equal(await option(signal).count(), 1, `the UI offers ${signal}`);
      await option('resume').click();
      await shot('2-send-resume');
      await dialog.getByTestId('confirm-modal-button').click();

      // The rollout goes on and completes; the preparation that waits on it too.
      const done = await preparation.result();
      assert.equal(done.phase, 'done', JSON.stringify(done));
      const rollout = await client.workflow.getHandle(rolloutId).describe();
      assert.equal(rollout.status.name, 'COMPLETED');
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => done.lessonId),
        'every satellite serves the new lesson',
      );
      // The signal came from the UI: the history says so.
      const history = await client.workflow.getHandle(rolloutId).fetchHistory();
      const signals = history.events!.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'resume');
      assert.equal(signals.length, 1, 'one resume signal');
      await page.reload();
      await page.getByText('Completed', { exact: true }).first().waitFor();
      await shot('3-completed');
    } catch (err) {
      await shot('failure').catch(() => undefined);
      writeFileSync(path.join(ARTIFACTS, 'temporal-ui-failure.html'), await page.content().catch(() => ''));
      throw err;
    } finally {
      await page.close();
    }
    assert.ok(existsSync(path.join(ARTIFACTS, 'temporal-ui-1-halted-rollouts.png')));
  });
});
