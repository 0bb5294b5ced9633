"""Configuration: nexus.toml, NEXUS_* overrides, credential references, and errors that say which
key in which file is wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nexus.config import NexusSettings, load_settings, resolve_credentials
from nexus.drivers.contract import ChannelContext
from nexus.engine import Nexus
from nexus.errors import ConfigError

GOOD = """
database_url = "sqlite+aiosqlite:///{db}"
log_level = "debug"

[worker]
max_attempts = 5
backoff_base = 2.0

[channels.shop-us]
driver = "shopify"
base_url = "https://example.myshopify.com/"
credentials = {{ access_token = "env:TEST_SHOP_TOKEN", shop = "example" }}
batch_size = 100

[channels.shop-us.allocation]
percentage = 50
buffer = 2

[channels.shop-us.rate_limit]
capacity = 40
refill_per_second = 2
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NEXUS_* variable from the machine leaks in, and no nexus.toml from the work tree."""
    for name in list(os.environ):
        if name.startswith("NEXUS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "nexus.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def good(tmp_path: Path) -> Path:
    return write(tmp_path, GOOD.format(db=tmp_path / "n.db"))


def test_a_file_loads(tmp_path: Path) -> None:
    path = good(tmp_path)
    settings, source = load_settings(path)
    assert source == str(path)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'n.db'}"
    assert settings.log_level == "debug"
    assert (settings.worker.max_attempts, settings.worker.backoff_base) == (5, 2.0)
    assert settings.worker.lease_seconds == 60.0  # defaults fill the rest
    shop = settings.channels["shop-us"]
    assert shop.driver == "shopify"
    assert shop.base_url == "https://example.myshopify.com"
    assert shop.credentials == {"access_token": "env:TEST_SHOP_TOKEN", "shop": "example"}
    assert (shop.allocation.percentage, shop.allocation.buffer) == (50, 2)
    assert (shop.rate_limit.capacity, shop.rate_limit.refill_per_second) == (40, 2)
    assert shop.batch_size == 100


def test_the_default_file_is_found_in_the_working_directory_or_through_nexus_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good(tmp_path)
    settings, source = load_settings()
    assert source == "nexus.toml"
    assert settings.worker.max_attempts == 5
    other = write(tmp_path, "[worker]\nmax_attempts = 9\n", name="other.toml")
    monkeypatch.setenv("NEXUS_CONFIG", str(other))
    settings, source = load_settings()
    assert (settings.worker.max_attempts, source) == (9, str(other))


def test_without_a_file_the_defaults_apply(tmp_path: Path) -> None:
    settings, source = load_settings()
    assert settings.channels == {}
    assert settings.database_url.startswith("sqlite+aiosqlite://")
    assert "environment" in source


def test_a_nexus_table_is_accepted_in_a_file_shared_with_other_tools(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[tool.linter]\nline-length = 100\n\n"
        '[nexus]\nlog_level = "error"\n\n'
        "[nexus.worker]\nmax_attempts = 4\n",
    )
    settings, _ = load_settings(path)
    assert settings.worker.max_attempts == 4
    assert settings.log_level == "error"


def test_the_environment_overrides_the_file_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = good(tmp_path)
    monkeypatch.setenv("NEXUS_WORKER__MAX_ATTEMPTS", "3")
    monkeypatch.setenv("NEXUS_LOG_LEVEL", "warning")
    monkeypatch.setenv("NEXUS_DATABASE_URL", "postgresql+asyncpg://nexus@db/nexus")
    settings, _ = load_settings(path)
    assert settings.worker.max_attempts == 3
    assert settings.worker.backoff_base == 2.0  # the file's sibling keys survive
    assert settings.log_level == "warning"
    assert settings.database_url == "postgresql+asyncpg://nexus@db/nexus"
    assert settings.channels["shop-us"].allocation.percentage == 50


def test_a_nested_channel_key_can_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = good(tmp_path)
    monkeypatch.setenv("NEXUS_CHANNELS__shop-us__ENABLED", "false")
    settings, _ = load_settings(path)
    shop = settings.channels["shop-us"]
    assert shop.enabled is False
    assert shop.driver == "shopify"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[worker]\nmax_attempts = 0\n", "worker.max_attempts"),
        ('[worker]\nbackoff_base = "soon"\n', "worker.backoff_base"),
        ('log_level = "chatty"\n', "log_level"),
        (
            '[channels.shop]\ndriver = "x"\n[channels.shop.allocation]\npercentage = 150\n',
            "channels.shop.allocation.percentage",
        ),
        ('[channels.shop]\ndriver = "x"\nbase_url = "example.com"\n', "channels.shop.base_url"),
        ("[channels.shop]\nenabled = true\n", "channels.shop.driver"),
    ],
)
def test_a_bad_value_names_the_dotted_key_and_the_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == key
    assert caught.value.source == str(path)
    assert key in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_bad_environment_value_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = good(tmp_path)
    monkeypatch.setenv("NEXUS_WORKER__MAX_ATTEMPTS", "many")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "worker.max_attempts"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour = 'blue'\n", "colour"),
        ("[worker]\nmax_atempts = 3\n", "worker.max_atempts"),
        (
            '[channels.shop]\ndriver = "x"\n[channels.shop.allocation]\nbufer = 3\n',
            "channels.shop.allocation.bufer",
        ),
    ],
)
def test_an_unknown_key_is_named(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="unknown key") as caught:
        load_settings(path)
    assert caught.value.key == key
    assert key in str(caught.value) and str(path) in str(caught.value)


def test_a_channel_name_must_be_a_slug(tmp_path: Path) -> None:
    path = write(tmp_path, '[channels."shop us!"]\ndriver = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "channels"
    assert "shop us!" in str(caught.value)


def test_not_toml_and_a_missing_file_name_the_file(tmp_path: Path) -> None:
    broken = write(tmp_path, "[worker\nmax_attempts = ")
    with pytest.raises(ConfigError, match="TOML") as caught:
        load_settings(broken)
    assert str(broken) in str(caught.value)
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as caught:
        load_settings(missing)
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///nexus.db",
        "postgresql://nexus@db/nexus",
        "postgresql+psycopg2://nexus@db/nexus",
        "mysql://x",
    ],
)
def test_a_database_url_without_an_async_driver_is_refused(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, f'database_url = "{url}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "database_url" in str(caught.value)
    assert "async" in str(caught.value)
    assert str(path) in str(caught.value)


def test_credential_references_resolve_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = good(tmp_path)
    monkeypatch.setenv("TEST_SHOP_TOKEN", "shpat_from_env")
    settings, source = load_settings(path)
    resolved = resolve_credentials("shop-us", settings.channels["shop-us"], source)
    assert resolved == {"access_token": "shpat_from_env", "shop": "example"}


async def test_a_channel_gets_its_resolved_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = good(tmp_path)
    monkeypatch.setenv("TEST_SHOP_TOKEN", "shpat_from_env")
    nexus = Nexus.from_config(path)
    seen: list[ChannelContext] = []

    def factory(context: ChannelContext) -> object:
        seen.append(context)
        raise RuntimeError("stop here: the context is what this test looks at")

    nexus.extend("shopify", factory)  # type: ignore[arg-type]
    try:
        with pytest.raises(RuntimeError, match="stop here"):
            nexus.channel("shop-us")
    finally:
        await nexus.aclose()
    assert seen[0].credentials["access_token"] == "shpat_from_env"
    assert seen[0].base_url == "https://example.myshopify.com"


async def test_a_missing_credential_variable_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = good(tmp_path)
    nexus = Nexus.from_config(path)
    nexus.extend("shopify", lambda context: None)  # type: ignore[arg-type,return-value]
    try:
        with pytest.raises(ConfigError) as caught:
            nexus.channel("shop-us")
    finally:
        await nexus.aclose()
    assert caught.value.key == "channels.shop-us.credentials.access_token"
    assert "TEST_SHOP_TOKEN" in str(caught.value)
    assert str(path) in str(caught.value)


def test_settings_written_as_toml_read_back_unchanged(tmp_path: Path) -> None:
    settings = NexusSettings(
        database_url="postgresql+asyncpg://nexus@db/nexus",
        redis_url="redis://cache:6379/0",
        channels={
            "shop-us": {
                "driver": "shopify",
                "base_url": "https://example.myshopify.com",
                "credentials": {"access_token": "env:TOKEN", "webhook_secret": 'a "quoted" \\ secret'},
                "settings": {"location_ids": [1, 2], "flag": True, "ratio": 0.5},
                "rate_limit": {"capacity": 2000, "refill_per_second": 100, "account": "acme"},
            }
        },
        worker={"concurrency": 4, "lease_seconds": 30},
    )
    path = tmp_path / "nexus.toml"
    path.write_text(settings.to_toml(), encoding="utf-8")
    loaded, _ = load_settings(path)
    assert loaded == settings


# -- every channel's own keys, checked before a process starts --------------------------------------

SECRET = "literal-SECRET-4711"  # must never appear in an error message
CHANNELS = {
    "shopify": (
        'base_url = "https://example.myshopify.com"\n'
        f'credentials = {{ access_token = "{SECRET}", webhook_secret = "{SECRET}" }}\n',
        {},
    ),
    "woocommerce": (
        'base_url = "https://shop.example.com"\n'
        f'credentials = {{ consumer_key = "ck_1", consumer_secret = "{SECRET}" }}\n',
        {},
    ),
    "amazon": (
        'base_url = "https://sellingpartnerapi-na.amazon.com"\n'
        f'credentials = {{ client_id = "i", client_secret = "{SECRET}", refresh_token = "{SECRET}" }}\n',
        {"seller_id": '"A1"', "marketplace_ids": '["ATVPDKIKX0DER"]'},
    ),
    "etsy": (
        f'credentials = {{ keystring = "k", shared_secret = "{SECRET}", refresh_token = "{SECRET}" }}\n',
        {"shop_id": "7"},
    ),
    "rest": (
        f'base_url = "https://pos.example.com"\ncredentials = {{ token = "{SECRET}" }}\n',
        {"list_url": '"/items"', "push_url": '"/stock"'},
    ),
}
# One bad value per channel: (setting, TOML value).
BAD_SETTING = {
    "shopify": ("max_throttle_retries", "-1"),
    "woocommerce": ("batch_limit", "101"),
    "amazon": ("sales_from", '"sometimes"'),
    "etsy": ("requests_per_day", "-5"),
    "rest": ("pagination", '"sometimes"'),
}
REQUIRED_CREDENTIAL = {
    "shopify": "access_token",
    "woocommerce": "consumer_key",
    "amazon": "client_id",
    "etsy": "keystring",
}


def channel_file(
    tmp_path: Path, driver: str, settings: dict[str, str], credentials: str | None = None
) -> Path:
    keys, defaults = CHANNELS[driver]
    if credentials is not None:
        keys = "\n".join(line for line in keys.splitlines() if not line.startswith("credentials")) + (
            f"\ncredentials = {{ {credentials} }}\n"
        )
    table = ", ".join(f"{key} = {value}" for key, value in {**defaults, **settings}.items())
    return write(
        tmp_path,
        f'database_url = "sqlite+aiosqlite:///{tmp_path / "n.db"}"\n\n'
        f'[channels.store]\ndriver = "{driver}"\n{keys}settings = {{ {table} }}\n',
    )


async def check(path: Path) -> ConfigError | None:
    nexus = Nexus.from_config(path)
    try:
        nexus.check_channels()
    except ConfigError as exc:
        return exc
    finally:
        await nexus.aclose()
    return None


@pytest.mark.parametrize("driver", sorted(CHANNELS))
async def test_every_channel_with_good_keys_passes_the_start_up_check(tmp_path: Path, driver: str) -> None:
    assert await check(channel_file(tmp_path, driver, {})) is None


@pytest.mark.parametrize("driver", sorted(BAD_SETTING))
async def test_a_bad_setting_of_any_channel_names_its_full_key_and_the_file(
    tmp_path: Path, driver: str
) -> None:
    key, value = BAD_SETTING[driver]
    path = channel_file(tmp_path, driver, {key: value})
    error = await check(path)
    assert error is not None
    assert error.key == f"channels.store.settings.{key}"
    assert f"key channels.store.settings.{key}" in str(error) and str(path) in str(error)
    assert SECRET not in str(error)


@pytest.mark.parametrize("driver", sorted(REQUIRED_CREDENTIAL))
async def test_a_missing_credential_of_any_channel_names_its_full_key(tmp_path: Path, driver: str) -> None:
    path = channel_file(tmp_path, driver, {}, credentials=f'webhook_secret = "{SECRET}"')
    error = await check(path)
    assert error is not None
    assert error.key == f"channels.store.credentials.{REQUIRED_CREDENTIAL[driver]}"
    assert str(path) in str(error) and SECRET not in str(error)


async def test_a_secret_given_where_a_setting_belongs_is_not_repeated(tmp_path: Path) -> None:
    # A credential pasted into a setting by mistake: the error names the key, not the value.
    path = channel_file(tmp_path, "etsy", {"shop_id": f'"{SECRET}"'})
    error = await check(path)
    assert error is not None and error.key == "channels.store.settings.shop_id"
    assert SECRET not in str(error)


def test_a_settings_model_does_not_show_credentials_in_its_repr() -> None:
    from nexus.channels.shopify import ShopifySettings

    settings = ShopifySettings.load(
        "shop",
        base_url="https://x.myshopify.com",
        credentials={"access_token": SECRET, "webhook_secret": SECRET},
        settings={},
        source="test",
    )
    assert settings.access_token == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings)


async def test_a_driver_registered_with_a_settings_model_is_checked_before_it_is_built(
    tmp_path: Path,
) -> None:
    from nexus.config import ChannelSettings, credential, settings_model

    class PosSettings(ChannelSettings):
        api_key: str = credential(min_length=1)
        store_id: int

    built: list[str] = []

    @settings_model(PosSettings)
    def factory(context: ChannelContext) -> object:
        built.append(context.name)
        raise RuntimeError("not reached")

    path = write(
        tmp_path,
        f'database_url = "sqlite+aiosqlite:///{tmp_path / "n.db"}"\n\n'
        '[channels.till]\ndriver = "pos"\ncredentials = { api_key = "k" }\nsettings = { store_id = "x" }\n',
    )
    nexus = Nexus.from_config(path)
    nexus.extend("pos", factory)  # type: ignore[arg-type]
    try:
        with pytest.raises(ConfigError) as caught:
            nexus.check_channels()
    finally:
        await nexus.aclose()
    assert caught.value.key == "channels.till.settings.store_id" and str(path) in str(caught.value)
    assert built == []


async def test_a_disabled_channel_is_not_checked(tmp_path: Path) -> None:
    path = channel_file(tmp_path, "amazon", {"sales_from": '"sometimes"'})
    path.write_text(path.read_text().replace('driver = "amazon"', 'driver = "amazon"\nenabled = false'))
    assert await check(path) is None
