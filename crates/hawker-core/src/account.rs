//! Accounts: roles and the rules for sign-up fields.

use serde::{Deserialize, Serialize};

use crate::InvalidInput;

/// What an account may do. Buyers buy and chat; sellers also run shows; moderators also keep
/// chat clean in every show; admins may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Buyer,
    Seller,
    Moderator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buyer => "buyer",
            Self::Seller => "seller",
            Self::Moderator => "moderator",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "buyer" => Some(Self::Buyer),
            "seller" => Some(Self::Seller),
            "moderator" => Some(Self::Moderator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn can_sell(self) -> bool {
        matches!(self, Self::Seller | Self::Admin)
    }

    pub fn can_moderate(self) -> bool {
        matches!(self, Self::Moderator | Self::Admin)
    }
}

/// A lower-cased e-mail address with one `@` and a dot in the domain.
pub fn email(raw: &str) -> Result<String, InvalidInput> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && !email.contains(char::is_control)
        && !email.contains("..")
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(InvalidInput::new(
            "email",
            "must be an e-mail address like ana@example.com",
        ))
    }
}

/// Passwords: 8 to 128 characters; longer ones are passphrases we still hash cheaply enough.
pub fn password(raw: &str) -> Result<&str, InvalidInput> {
    let n = raw.chars().count();
    if (8..=128).contains(&n) {
        Ok(raw)
    } else {
        Err(InvalidInput::new("password", "must be 8 to 128 characters"))
    }
}

pub fn display_name(raw: &str) -> Result<String, InvalidInput> {
    crate::catalog::text("display_name", raw, 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_up_fields() {
        assert_eq!(email(" Ana@Example.com "), Ok("ana@example.com".into()));
        for bad in [
            "ana",
            "ana@",
            "@x.com",
            "ana@x",
            "a b@x.com",
            "a@x.com.",
            "a@b.c\0",
            "a@b..c",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
        assert!(display_name("   ").is_err());
    }
}
