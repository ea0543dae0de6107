//! A steady, realistic firehose: accounts post, like, repost, follow, edit their profile and
//! delete, a few write records outside `app.bsky`, and now and then an identity or account
//! event goes by. Deterministic for a given seed.

use std::collections::VecDeque;

use serde_json::json;

use crate::firehose::{FirehoseScript, Op, ScriptError};
use crate::log::Item;

/// Collections outside `app.bsky.`/`chat.bsky.` that real firehoses carry (filtered downstream).
const OTHER_COLLECTIONS: &[&str] = &[
    "com.whtwnd.blog.entry",
    "fyi.unravel.frontpage.post",
    "sh.tangled.repo",
    "blue.flashes.feed.post",
];

const WORDS: &[&str] = &[
    "firehose", "relay", "sky", "post", "morning", "coffee", "rust", "atproto", "stream", "label",
    "feed", "hello", "world", "today", "blue", "garden", "music", "cats", "bread", "sunset",
];

/// Keeps each simulated repository small, so building its MST per commit stays cheap.
const MAX_RECORDS_PER_ACCOUNT: usize = 40;

struct Account {
    did: String,
    /// Paths this account created, oldest first (for deletes).
    paths: VecDeque<String>,
    has_profile: bool,
}

/// The DID of simulated account `i`: `did:plc:load` and `i` in 20 digits. The load generator's
/// accounts, the relay's listed repositories (`TEST_RELAY_LIST_REPOS`) and the test PDS's
/// accounts ([`crate::pds::host_load_accounts`]) share these DIDs, so that a pipeline can list,
/// fetch and label the same accounts.
pub fn load_did(i: usize) -> String {
    format!("did:plc:load{i:020}")
}

/// Generates frames for a population of accounts.
///
/// ```
/// let mut load = rsky_testkit::load::LoadGenerator::new(100, 7);
/// let items = load.next_items(50).unwrap();
/// assert_eq!(items.len(), 50);
/// assert!(items.iter().all(|item| item.seq.is_some()));
/// ```
pub struct LoadGenerator {
    script: FirehoseScript,
    accounts: Vec<Account>,
    posts: VecDeque<(String, String)>,
    rng: u64,
    rkey_clock: u64,
}

impl LoadGenerator {
    /// `accounts` simulated accounts (at least 1), random choices seeded by `seed`.
    pub fn new(accounts: usize, seed: u64) -> Self {
        Self::starting_at(accounts, seed, 1)
    }

    /// Like [`LoadGenerator::new`], the first event with sequence number `first_seq`.
    pub fn starting_at(accounts: usize, seed: u64, first_seq: i64) -> Self {
        let accounts = (0..accounts.max(1))
            .map(|i| Account {
                did: load_did(i),
                paths: VecDeque::new(),
                has_profile: false,
            })
            .collect();
        LoadGenerator {
            script: FirehoseScript::new(first_seq),
            accounts,
            posts: VecDeque::new(),
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            rkey_clock: 1_710_000_000_000_000,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: enough randomness for a plausible mix, with no dependency.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn rkey(&mut self) -> String {
        self.rkey_clock += 1;
        rsky_atproto::syntax::tid_from_parts(self.rkey_clock, 1)
    }

    fn text(&mut self) -> String {
        let n = 3 + self.below(12);
        (0..n)
            .map(|_| WORDS[self.below(WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The next `n` frames.
    pub fn next_items(&mut self, n: usize) -> Result<Vec<Item>, ScriptError> {
        for _ in 0..n {
            self.next_event()?;
        }
        Ok(self.script.take_items())
    }

    fn next_event(&mut self) -> Result<(), ScriptError> {
        let who = self.below(self.accounts.len());
        let did = self.accounts[who].did.clone();
        let now = rsky_common::time::now_rfc3339();
        let roll = self.below(100);
        if roll < 3 {
            let handle = format!("user{who}.test");
            self.script.identity(&did, Some(&handle))?;
            return Ok(());
        }
        if roll < 4 {
            self.script.account_status(&did, true, None)?;
            return Ok(());
        }
        let mut ops = Vec::new();
        if self.accounts[who].paths.len() >= MAX_RECORDS_PER_ACCOUNT || roll < 10 {
            if let Some(path) = self.accounts[who].paths.pop_front() {
                if let Some((collection, rkey)) = path.split_once('/') {
                    ops.push(Op::delete(collection, rkey));
                }
            }
        }
        let rkey = self.rkey();
        let pick = self.below(self.posts.len().max(1));
        let subject = self.posts.get(pick).cloned();
        let (collection, record) = match (roll, subject) {
            (10..=49, Some((uri, cid))) => (
                "app.bsky.feed.like",
                json!({"$type": "app.bsky.feed.like", "subject": {"uri": uri, "cid": cid}, "createdAt": now}),
            ),
            (50..=57, Some((uri, cid))) => (
                "app.bsky.feed.repost",
                json!({"$type": "app.bsky.feed.repost", "subject": {"uri": uri, "cid": cid}, "createdAt": now}),
            ),
            (58..=67, _) => {
                let whom = self.below(self.accounts.len());
                let other = self.accounts[whom].did.clone();
                (
                    "app.bsky.graph.follow",
                    json!({"$type": "app.bsky.graph.follow", "subject": other, "createdAt": now}),
                )
            }
            (68..=71, _) => {
                let text = self.text();
                let collection = OTHER_COLLECTIONS[self.below(OTHER_COLLECTIONS.len())];
                (
                    collection,
                    json!({"$type": collection, "content": text, "createdAt": now}),
                )
            }
            (72..=74, _) => {
                let text = self.text();
                let record = json!({"$type": "app.bsky.actor.profile", "displayName": format!("User {who}"), "description": text});
                let op = if self.accounts[who].has_profile {
                    Op::update("app.bsky.actor.profile", "self", record)
                } else {
                    Op::create("app.bsky.actor.profile", "self", record)
                };
                self.accounts[who].has_profile = true;
                ops.push(op);
                self.script.commit(&did, &ops)?;
                return Ok(());
            }
            _ => {
                let text = self.text();
                (
                    "app.bsky.feed.post",
                    json!({"$type": "app.bsky.feed.post", "text": text, "langs": ["en"], "createdAt": now}),
                )
            }
        };
        ops.push(Op::create(collection, &rkey, record.clone()));
        self.script.commit(&did, &ops)?;
        let path = format!("{collection}/{rkey}");
        if collection == "app.bsky.feed.post" {
            let cid = rsky_atproto::cbor::json_to_ipld(&record)
                .ok()
                .and_then(|ipld| rsky_atproto::cbor::encode_block(&ipld).ok())
                .map(|(cid, _)| cid.to_string())
                .unwrap_or_default();
            self.posts.push_back((format!("at://{did}/{path}"), cid));
            if self.posts.len() > 1000 {
                self.posts.pop_front();
            }
        }
        self.accounts[who].paths.push_back(path);
        Ok(())
    }
}
