//! The Lua scripts of saves, deletes and lock releases, run atomically on the
//! Redis server.

use redis::Script;

/// The three scripts, made once per store.
pub(super) struct Scripts {
    pub(super) save: Script,
    pub(super) delete: Script,
    pub(super) release: Script,
    pub(super) extend: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            save: Script::new(SAVE),
            delete: Script::new(DELETE),
            release: Script::new(RELEASE),
            extend: Script::new(EXTEND),
        }
    }
}

// ARGV: mode, expected version, new version, record, expire-at ms ('' = none),
// channel, the change message up to its kind (see `messages::save_message`).
const SAVE: &str = r#"
local t = redis.call('TYPE', KEYS[1]).ok
local cur = false
if t == 'hash' then
  cur = redis.call('HGET', KEYS[1], 'v')
  if not cur then return 'corrupt' end
elseif t ~= 'none' then
  return 'corrupt'
end
if ARGV[1] == 'create' then
  if cur then return 'conflict' end
elseif ARGV[1] == 'update' then
  if cur ~= ARGV[2] then return 'conflict' end
end
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'r', ARGV[4])
if ARGV[5] ~= '' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
else
  redis.call('PERSIST', KEYS[1])
end
local kind = 'created'
if cur then kind = 'updated' end
redis.call('PUBLISH', ARGV[6], ARGV[7] .. kind .. '"}')
return kind
"#;

// ARGV: '1' if a version must match, the version, channel, message.
const DELETE: &str = r"
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'none' then
  if ARGV[1] == '1' then return 'conflict' end
  return 'missing'
end
if t ~= 'hash' then return 'corrupt' end
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur then return 'corrupt' end
if ARGV[1] == '1' and cur ~= ARGV[2] then return 'conflict' end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 'deleted'
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

// ARGV: holder, lease in ms.
const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";
