// Opens a report.html in a real headless Chromium and fails (exit 1) on a console error or
// warning, an uncaught exception, a request for anything outside the page, or an image that did
// not load; saves a full-page screenshot either way. Run by .ci/run:
//
//   (cd scripts/report-check && npm ci) && node scripts/report-check/check-report.mjs results/quickstart/report.html report.png
//
// Needs playwright-core (npm) and a Chromium (Debian's `chromium`, or CHROMIUM=/path/to/it).
import { chromium } from 'playwright-core';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [pagePath, screenshot] = process.argv.slice(2);
if (!pagePath || !screenshot) {
  console.error('usage: node check-report.mjs REPORT.html SCREENSHOT.png');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // No sandbox (CI runs as root); no background traffic to hosts a closed network refuses.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`failed to load: ${request.url().slice(0, 80)}`));
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith('file:') && !url.startsWith('data:')) {
      problems.push(`request outside the page: ${url}`);
    }
  });
  const url = pathToFileURL(resolve(pagePath)).href;
  await page.goto(url, { waitUntil: 'load' });
  const images = await page.$$eval('img', (all) =>
    all.map((img) => ({ alt: img.alt, loaded: img.complete && img.naturalWidth > 0 })));
  if (images.length === 0) problems.push('no image on the page');
  for (const image of images.filter((i) => !i.loaded)) {
    problems.push(`image not loaded: ${image.alt}`);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  if (problems.length === 0) {
    console.log(`${pagePath}: ${images.length} images loaded, no console error; screenshot ${screenshot}`);
  }
} finally {
  await browser.close();
}
if (problems.length > 0) {
  console.error(`${pagePath}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
