"""Prepare the subject matter (index build): the full-text index in the database, and the
answers the web server hands out as files: every book by id, and the catalogue."""
import json
import shutil

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
building = served_dir() / "index.building"
shutil.rmtree(building, ignore_errors=True)
(building / "books").mkdir(parents=True)
for book in books.values():
    (building / "books" / f"{book['id']}.json").write_text(json.dumps(book, sort_keys=True) + "\n", encoding="utf-8")
catalogue = [books[i] for i in sorted(books)]
(building / "catalogue.json").write_text(json.dumps(catalogue, sort_keys=True) + "\n", encoding="utf-8")
shutil.rmtree(index, ignore_errors=True)
building.rename(index)
print(f"indexed {len(books)} books")
