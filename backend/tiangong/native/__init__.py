"""What runs beside the browser so nobody has to open a terminal: the native messaging host
the browser starts (`tiangong native-host`), its installation into each browser
(`tiangong install` / `uninstall`), and the extension shipped inside the package
(`tiangong extension`). See docs/native-host.md."""
