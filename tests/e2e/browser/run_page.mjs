// Opens a page in headless Chromium (playwright-core, the system's Chromium) and runs its
// window.runScenario(args). Prints one JSON line: the scenario's result plus the browser
// console lines (where Chromium reports CORS refusals).
//
// argv[2]: {executablePath, pageUrl, args}
import { chromium } from 'playwright-core';

const { executablePath, pageUrl, args } = JSON.parse(process.argv[2]);
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  const consoleLines = [];
  page.on('console', (message) => consoleLines.push(message.text()));
  await page.goto(pageUrl);
  const result = await page.evaluate((scenarioArgs) => window.runScenario(scenarioArgs), args);
  console.log(JSON.stringify({ ...result, console: consoleLines }));
} finally {
  await browser.close();
}
