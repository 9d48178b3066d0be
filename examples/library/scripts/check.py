"""Check new subject matter: exit 0 when the feed has books the database lacks or holds
otherwise, exit 10 when it has nothing new (lessonplan's two codes); it prints what it found."""
import argparse
import sys

from common import open_database, read_feed, stored_books

parser = argparse.ArgumentParser()
parser.add_argument("--feed", required=True)
args = parser.parse_args()

feed = read_feed(args.feed)
stored = stored_books(open_database())
new = [i for i in feed if i not in stored]
changed = [i for i in feed if i in stored and stored[i] != feed[i]]
if not new and not changed:
    print(f"nothing new: the {len(stored)} books of the feed are in the database")
    sys.exit(10)
print(f"{len(new)} new and {len(changed)} changed books in the feed")
