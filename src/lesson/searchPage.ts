/**
 * The lesson's search page: a static page that looks each typed word up in its file
 * (search/<word>.json, named as layout.ts's termFile names it) and shows the items that
 * hold every word. Static on purpose: the satellites are plain Apache, and the page
 * works from any satellite's copy.
 */
import { MAX_FILE_NAME_BYTES, TERM_SPLIT_AT } from './layout';

export const SEARCH_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lessonplan search</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; padding: 0 1rem; }
  input { font: inherit; width: 70%; padding: .3rem; }
  li small { color: #666; margin-left: .5rem; }
  #lesson { color: #666; font-size: .8rem; }
</style>
</head>
<body>
<h1>Search</h1>
<form id="search">
  <input id="q" name="q" type="search" autocomplete="off" placeholder="words to find" required>
  <button type="submit">Search</button>
</form>
<p id="status" role="status"></p>
<ul id="results"></ul>
<p id="lesson"></p>
<script>
// Words are split and lower-cased as the reference's index ('simple' configuration) does;
// at most 64 letters (code points, not UTF-16 units: a letter past U+FFFF is one letter).
const words = (text) => text.toLowerCase().split(/[^\\p{L}\\p{N}]+/u).filter((w) => w.length > 0 && [...w].length <= 64);
const key = (hit) => hit.subject + '/' + hit.id;

// The word's file, named as the lesson names it: a name too long for a file system is
// cut after letter ${TERM_SPLIT_AT} of the word into a folder and a file.
function termPath(word) {
  if (new TextEncoder().encode(word + '.json').length <= ${MAX_FILE_NAME_BYTES}) return 'search/' + encodeURIComponent(word) + '.json';
  const letters = [...word];
  return 'search/' + encodeURIComponent(letters.slice(0, ${TERM_SPLIT_AT}).join('')) + '/' + encodeURIComponent(letters.slice(${TERM_SPLIT_AT}).join('')) + '.json';
}

async function lookUp(word) {
  const response = await fetch(termPath(word), { cache: 'no-store' });
  if (response.status === 404) return [];
  if (!response.ok) throw new Error('the server answered ' + response.status + ' for "' + word + '"');
  return (await response.json()).hits;
}

async function search(query) {
  const status = document.getElementById('status');
  const list = document.getElementById('results');
  list.replaceChildren();
  const asked = [...new Set(words(query))];
  if (asked.length === 0) { status.textContent = 'Type a word to search.'; return; }
  status.textContent = 'Searching...';
  try {
    const answers = await Promise.all(asked.map(lookUp));
    let hits = answers[0];
    for (const more of answers.slice(1)) {
      const found = new Set(more.map(key));
      hits = hits.filter((hit) => found.has(key(hit)));
    }
    for (const hit of hits) {
      const item = document.createElement('li');
      const link = document.createElement('a');
      link.href = 'items/' + encodeURIComponent(hit.subject) + '/' + encodeURIComponent(hit.id) + '.json';
      link.textContent = hit.title;
      const subject = document.createElement('small');
      subject.textContent = hit.subject;
      item.append(link, subject);
      list.append(item);
    }
    status.textContent = hits.length === 0 ? 'No results.' : hits.length + (hits.length === 1 ? ' result.' : ' results.');
  } catch (err) {
    status.textContent = 'Search failed: ' + err.message;
  }
}

document.getElementById('search').addEventListener('submit', (event) => {
  event.preventDefault();
  search(document.getElementById('q').value);
});
fetch('version', { cache: 'no-store' })
  .then((r) => (r.ok ? r.text() : ''))
  .then((v) => { document.getElementById('lesson').textContent = v ? 'lesson ' + v.trim() : ''; });
</script>
</body>
</html>
`;
