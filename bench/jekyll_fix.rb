# The fix Jekyll 4.3.2 shipped for 4.3.1's quadratic Site#each_site_file, as a monkeypatch
# (loaded with RUBYOPT=-r<this file>), so Debian's packaged 4.3.1 is measured as 4.3.2 behaves.
# 4.3.1 checked every file it wrote against an Array of the files already written.
require "set"
require "jekyll"

module Jekyll
  class Site
    def each_site_file
      written = Set.new.compare_by_identity
      %w(pages static_files_to_write docs_to_write).each do |kind|
        send(kind).each { |item| yield item if written.add?(item) }
      end
    end
  end
end
