"""The library's web application on a satellite: it answers from the lesson it was
started on (LESSON_DIR resolved once, at start: a switch of lesson restarts it):

  /                        the search page (search.html): a word, the books it finds
  /health                  "ok" while it runs (service.py isup asks it)
  /version                 the lesson id (lessonplan's file; the load balancer's health check)
  /index/...               the answers the index build wrote, byte for byte
  /search?q=word           the full-text index of the lesson's database, as JSON

The database is opened read-only and immutable: the lesson's files are never written."""
import argparse
import json
import sqlite3
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--lesson", required=True)
args = parser.parse_args()
lesson = Path(args.lesson).resolve()
SEARCH_PAGE = Path(__file__).with_name("search.html").read_bytes()
database = f"file:{lesson / 'db' / 'library.sqlite'}?mode=ro&immutable=1"


class Library(BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def answer(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/search":
            word = urllib.parse.parse_qs(url.query).get("q", [""])[0]
            if not word.isalnum():
                return self.answer(400, b'{"error": "q must be one word"}\n', "application/json")
            with sqlite3.connect(database, uri=True) as db:
                ids = [row[0] for row in db.execute("SELECT rowid FROM books_fts WHERE books_fts MATCH ? ORDER BY rowid", (f'"{word}"',))]
            return self.answer(200, (json.dumps({"q": word, "ids": ids}) + "\n").encode(), "application/json")
        if url.path == "/health":
            return self.answer(200, b"ok\n", "text/plain")
        if url.path == "/":
            return self.answer(200, SEARCH_PAGE, "text/html; charset=utf-8")
        relative = url.path.lstrip("/")
        if relative == "version" or relative.startswith("index/"):
            file = (lesson / relative).resolve()
            if lesson in file.parents and file.is_file():
                return self.answer(200, file.read_bytes(), "application/json" if file.suffix == ".json" else "text/plain")
        self.answer(404, b"not found\n", "text/plain")


ThreadingHTTPServer(("127.0.0.1", args.port), Library).serve_forever()
