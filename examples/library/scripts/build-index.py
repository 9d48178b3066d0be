"""Prepare the subject matter (index build): the full-text index in the database, and the
answers the web server hands out as files: every book by id, and the catalogue."""
import json

from common import open_database, served_dir, stored_books

db = open_database()
with db:
    db.execute("DROP TABLE IF EXISTS books_fts")
    db.execute("CREATE VIRTUAL TABLE books_fts USING fts5(title, author, content='books', content_rowid='id')")
    db.execute("INSERT INTO books_fts (rowid, title, author) SELECT id, title, author FROM books")
books = stored_books(db)
db.execute("VACUUM")
db.close()

index = served_dir() / "index"
(index / "books").mkdir(parents=True, exist_ok=True)


def write_if_changed(file, text: str) -> bool:
    # An unchanged answer keeps its file, and so its time: rsync then takes it from the
    # satellite's previous lesson instead of sending it again.
    if file.exists() and file.read_text(encoding="utf-8") == text:
        return False
    partial = file.with_name(file.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(file)
    return True


written = sum(write_if_changed(index / "books" / f"{book['id']}.json", json.dumps(book, sort_keys=True) + "\n") for book in books.values())
for stale in (index / "books").glob("*.json"):
    if int(stale.stem) not in books:
        stale.unlink()
catalogue = [books[i] for i in sorted(books)]
written += write_if_changed(index / "catalogue.json", json.dumps(catalogue, sort_keys=True) + "\n")
print(f"indexed {len(books)} books, {written} answers written")
