from tests.e2e.platform_fixtures import emulator, module_platform

__all__ = ["emulator", "module_platform"]
