// The library's browser test: a headless Chromium (Debian's, driven by playwright-core)
// opens the search page at a URL (the users' entry through the load balancer, or one
// satellite), searches a word and expects a title among the results. Exit 0 when it is
// there, 1 when not (saying what the page showed), 2 on bad usage.
//
//   node tests/browser-search.mjs <url> <word> <expected title> [chromium path]
import { chromium } from 'playwright-core';

const [url, word, title, executablePath = '/usr/bin/chromium'] = process.argv.slice(2);
if (!url || !word || !title) {
  console.error('usage: browser-search.mjs <url> <word> <expected title> [chromium path]');
  process.exit(2);
}
// Chromium's sandbox refuses to run as root.
const browser = await chromium.launch({ executablePath, headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  const answer = await page.goto(url);
  if (answer?.status() !== 200) throw new Error(`${url} answered ${answer?.status() ?? 'nothing'}`);
  await page.fill('#q', word);
  await page.click('button[type=submit]');
  await page.waitForFunction("(() => { const t = document.getElementById('status').textContent; return t !== '' && t !== 'Searching...'; })()");
  const titles = await page.locator('#results li a').allTextContents();
  const status = await page.textContent('#status');
  if (!titles.includes(title)) {
    console.error(`searching "${word}" at ${url} did not show "${title}": the page says "${status}", titles: ${JSON.stringify(titles)}`);
    process.exitCode = 1;
  } else console.log(`searching "${word}" at ${url}: "${title}" among ${titles.length} results`);
} finally {
  await browser.close();
}
