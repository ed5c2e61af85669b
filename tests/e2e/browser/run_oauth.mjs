// Drives tests/e2e/browser/oauth_page.html in headless Chromium (playwright-core, the system's
// Chromium) with a browser profile kept in userDataDir, so that a second run is the same
// browser coming back later. Prints one JSON line: the page's result, the login dialogs it
// showed and the browser console.
//
// argv[2]: {executablePath, userDataDir, pageUrl, title, login?: {provider, issuer, user, password}}
//   with `login`: start the default login flow, pick `provider` in the chooser, sign in on the
//   provider's own pages, come back, then write `title` and sync; without: only write and sync.
import { chromium } from 'playwright-core';

const { executablePath, userDataDir, pageUrl, title, login } = JSON.parse(process.argv[2]);
// What one step (a page of the flow) may take: generous, as the machine may be busy.
const STEP_MS = 60000;
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath, args: ['--no-sandbox'], headless: true,
});
const consoleLines = [];
const dialogs = [];
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on('console', (message) => {
    const text = message.text();
    consoleLines.push(text);
    if (text.startsWith('DXC-UI ')) dialogs.push(JSON.parse(text.slice(7)));
  });
  await page.goto(pageUrl);
  const pages = [];
  if (login) {
    const appOrigin = new URL(pageUrl).origin;
    await page.evaluate((provider) => window.startLogin(provider), login.provider);
    await page.waitForURL((url) => url.href.startsWith(login.issuer), { timeout: STEP_MS });
    pages.push(page.url());
    await page.fill('input[name=login]', login.user);
    await page.fill('input[name=password]', login.password);
    await page.click('button[type=submit]');
    // The consent page ("Continue"), then the broker sends the browser back to the app.
    await page.waitForURL((url) => url.href.includes('/interaction/'), { timeout: STEP_MS });
    pages.push(page.url());
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.origin === appOrigin, { timeout: STEP_MS });
    pages.push(page.url());
  }
  const result = await page.evaluate((text) => window.writeAndSync(text), title);
  console.log(JSON.stringify({ ...result, pages, dialogs, console: consoleLines }));
} catch (error) {
  // What the page said before the step failed: the test prints it with the error.
  console.error(JSON.stringify({ url: context.pages()[0]?.url(), dialogs, console: consoleLines }));
  throw error;
} finally {
  await context.close();
}
