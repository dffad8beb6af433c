//! The Lua scripts behind every transition, loaded lazily (EVALSHA, reloaded on NOSCRIPT, so a
//! restarted or failed-over Redis needs nothing from us).

use fred::prelude::*;
use fred::types::scripts::Script;
use fred::types::{FromValue, MultipleKeys, MultipleValues};

use crate::StoreError;

#[derive(Clone)]
pub(crate) struct Scripts {
    pub create: Lua,
    pub append_many: Lua,
    pub finish: Lua,
    pub renew: Lua,
    pub read: Lua,
    pub active: Lua,
    pub restore: Lua,
    pub conversation: Lua,
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            create: Lua(Script::from_lua(include_str!("lua/create.lua"))),
            append_many: Lua(Script::from_lua(include_str!("lua/append_many.lua"))),
            finish: Lua(Script::from_lua(include_str!("lua/finish.lua"))),
            renew: Lua(Script::from_lua(include_str!("lua/renew.lua"))),
            read: Lua(Script::from_lua(include_str!("lua/read.lua"))),
            active: Lua(Script::from_lua(include_str!("lua/active.lua"))),
            restore: Lua(Script::from_lua(include_str!("lua/restore.lua"))),
            conversation: Lua(Script::from_lua(include_str!("lua/conversation.lua"))),
        }
    }
}

/// One script.
#[derive(Clone)]
pub(crate) struct Lua(Script);

impl Lua {
    pub async fn run<R>(
        &self,
        client: &Client,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R, StoreError>
    where
        R: FromValue,
    {
        let keys: MultipleKeys = keys.into();
        let args: MultipleValues = args.try_into()?;
        Ok(self.0.evalsha_with_reload(client, keys, args).await?)
    }
}
