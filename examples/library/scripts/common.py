"""Shared by the library example's scripts: the feed (what the library's catalogue
system exports, one JSON object per line) and the database in the served folder."""
import json
import os
import sqlite3
import sys
from pathlib import Path

FIELDS = ("id", "title", "author", "year")


def served_dir() -> Path:
    # lessonplan gives every command the folder being prepared.
    return Path(os.environ["LESSON_DIR"])


def database_file() -> Path:
    return served_dir() / "db" / "library.sqlite"


def read_feed(feed_dir: str) -> dict:
    """Every book of the feed by id; a line that is not a book stops the script (exit 3)."""
    books = {}
    for file in sorted(Path(feed_dir).glob("*.jsonl")):
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                book = json.loads(line)
                if not isinstance(book, dict) or set(book) != set(FIELDS):
                    raise ValueError(f"expected exactly the fields {', '.join(FIELDS)}")
                if not isinstance(book["id"], int) or not isinstance(book["year"], int):
                    raise ValueError("id and year must be whole numbers")
                if not isinstance(book["title"], str) or not isinstance(book["author"], str):
                    raise ValueError("title and author must be text")
            except ValueError as err:
                print(f"{file.name} line {number}: not a book: {err}", file=sys.stderr)
                sys.exit(3)
            books[book["id"]] = book
    return books


def open_database(create: bool = False):
    path = database_file()
    if not path.exists() and not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS books (id INTEGER PRIMARY KEY, title TEXT NOT NULL, author TEXT NOT NULL, year INTEGER NOT NULL)")
    return db


def stored_books(db) -> dict:
    if db is None:
        return {}
    rows = db.execute("SELECT id, title, author, year FROM books").fetchall()
    return {row[0]: dict(zip(FIELDS, row)) for row in rows}
