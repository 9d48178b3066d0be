"""Prepare the subject matter (update): the feed's books into the database, in one transaction."""
import argparse

from common import open_database, read_feed

parser = argparse.ArgumentParser()
parser.add_argument("--feed", required=True)
args = parser.parse_args()

feed = read_feed(args.feed)
db = open_database(create=True)
with db:
    db.executemany(
        "INSERT INTO books (id, title, author, year) VALUES (:id, :title, :author, :year) "
        "ON CONFLICT (id) DO UPDATE SET title = excluded.title, author = excluded.author, year = excluded.year",
        list(feed.values()),
    )
db.execute("VACUUM")
db.close()
print(f"{len(feed)} books in the database")
