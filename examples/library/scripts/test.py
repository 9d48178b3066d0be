"""Proof-read (test suite): what the web server answers at LESSON_URL is what the
database holds, and the full-text index finds every book by a word of its title."""
import json
import sys
import urllib.request

from common import open_database, stored_books

base = __import__("os").environ["LESSON_URL"]
db = open_database()
books = stored_books(db)
with urllib.request.urlopen(f"{base}index/catalogue.json", timeout=10) as answer:
    served = json.load(answer)
if [b["id"] for b in served] != sorted(books):
    print(f"the catalogue serves {len(served)} books, the database holds {len(books)}", file=sys.stderr)
    sys.exit(1)
for book in books.values():
    word = max(book["title"].split(), key=len).strip(".,:;!?\"'()")
    hits = [row[0] for row in db.execute("SELECT rowid FROM books_fts WHERE books_fts MATCH ?", (f'"{word}"',))]
    if book["id"] not in hits:
        print(f"the index does not find book {book['id']} by \"{word}\"", file=sys.stderr)
        sys.exit(1)
print(f"{len(books)} books served and found")
