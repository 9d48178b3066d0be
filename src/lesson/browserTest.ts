/**
 * The built-in test suite: a real browser (Debian's chromium, headless, driven by
 * playwright-core) opens the lesson's search page, searches a word of the new subject
 * matter, and checks that the expected title is among the results. It runs on the
 * reference (proof-reading) and on every satellite (examination), so the page users
 * get is tested through the web server that will serve it.
 */
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { SearchProbe } from '../shared/lesson';

export interface BrowserTestOptions {
  /** The lesson's root URL, e.g. http://127.0.0.1:18201/ */
  baseUrl: string;
  /** Without one (nothing new to look for) the page must still load and its script run. */
  probe?: SearchProbe;
  chromiumPath: string;
  timeoutMs?: number;
}

/** Runs the test; returns its failures, one line each (none: it passed). */
export async function runSearchPageTest(options: BrowserTestOptions): Promise<string[]> {
  if (!existsSync(options.chromiumPath)) {
    return [`the browser test needs chromium at ${options.chromiumPath} (Debian: apt-get install chromium; or set reference.chromium)`];
  }
  const timeout = options.timeoutMs ?? 30_000;
  const browser = await chromium.launch({
    executablePath: options.chromiumPath,
    headless: true,
    // Chromium's sandbox refuses to run as root, which is how the embedded default runs.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
    timeout,
  });
  const failures: string[] = [];
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(timeout);
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const response = await page.goto(options.baseUrl);
    if (!response || response.status() !== 200) {
      return [`search page ${options.baseUrl}: HTTP ${response?.status() ?? 'no answer'}`];
    }
    await page.waitForSelector('#q');
    if (!options.probe) return pageErrors.map((e) => `search page script error: ${e}`);
    await page.fill('#q', options.probe.term);
    await page.click('button[type=submit]');
    // Evaluated in the page (a string, so this file needs no DOM types): the search has answered.
    await page.waitForFunction(
      "(() => { const t = document.getElementById('status')?.textContent ?? ''; return t !== '' && t !== 'Searching...'; })()",
    );
    const status = (await page.textContent('#status')) ?? '';
    const titles = await page.locator('#results li a').allTextContents();
    if (!titles.includes(options.probe.title)) {
      failures.push(
        `searching "${options.probe.term}" on ${options.baseUrl} did not show "${options.probe.title}" (page says: ${status.trim() || 'nothing'}; ${titles.length} results)`,
      );
    }
    failures.push(...pageErrors.map((e) => `search page script error: ${e}`));
  } catch (err) {
    failures.push(`browser test on ${options.baseUrl}: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await browser.close();
  }
  return failures;
}
